"""ACR events: typed payloads, their Event Grid and CloudEvents envelopes, the outbox that makes
them durable with the commit they describe, and the publishers (Event Grid, or the local delivery)."""
