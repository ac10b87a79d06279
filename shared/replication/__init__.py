"""Geo-replication: regions with their own storage, kept in step by an Event Grid-triggered function."""
