"""Composition root of the function app: the HTTP API plus the background functions."""

from functions import events, http, maintenance, webhooks

app = http.function_app()
for blueprint in (maintenance.bp, events.bp, webhooks.bp):
    app.register_functions(blueprint)
