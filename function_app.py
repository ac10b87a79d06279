"""Composition root of the function app: the HTTP API plus the background functions."""

from functions import http, maintenance

app = http.function_app()
app.register_functions(maintenance.bp)
