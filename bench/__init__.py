"""`make bench`: the registry against the CNCF reference registry and raw Azurite, side by side."""
