"""ACR webhooks: their definitions, storage, guarded outbound calls, and the Event Grid fan-out."""
