"""Rules of the OCI distribution and image specs: names, digests, media types, manifests."""
