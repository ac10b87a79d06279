"""Storage: where each fact lives in Azure Storage (layout), and the clients that reach it."""
