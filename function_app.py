"""The function app: the HTTP function serving the ASGI app, plus one background function per
consumer, timer and queue job the capabilities registered (``shared.composition``)."""

from functions import background, http

app = http.function_app()
app.register_functions(background.blueprint())
