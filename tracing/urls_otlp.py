"""OTLP/HTTP receiver routes (/v1/traces, /v1/metrics, /v1/logs)."""

from django.urls import path

from tracing import receiver

urlpatterns = [
    path("traces", receiver.export_traces, name="otlp-traces"),
    path("metrics", receiver.discard_signal, name="otlp-metrics"),
    path("logs", receiver.discard_signal, name="otlp-logs"),
]
