"""Framework-free library of the registry: OCI rules, storage, services and the ASGI API."""
