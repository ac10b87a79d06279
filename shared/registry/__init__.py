"""Registry services: uploads, blobs, manifests, tags and discovery over the storage clients."""
