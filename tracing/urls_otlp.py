"""OTLP/HTTP receiver routes (/v1/traces, /v1/metrics, /v1/logs)."""

urlpatterns: list = []
