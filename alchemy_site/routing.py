"""Websocket routes of every app, collected for asgi.py."""

from evals.routing import websocket_urlpatterns as evals_routes

websocket_urlpatterns = [*evals_routes]
