"""The HTTP API: one ASGI application served by uvicorn locally and by Azure Functions in Azure."""
