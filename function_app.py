"""Composition root of the function app: the HTTP API plus the background functions."""

from functions import events, http, maintenance

app = http.function_app()
app.register_functions(maintenance.bp)
app.register_functions(events.bp)
