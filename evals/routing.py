from django.urls import path

from evals import consumers

websocket_urlpatterns = [
    path("ws/evals/", consumers.EvalListConsumer.as_asgi()),
    # Eval ids contain colons (never slashes): <str:> takes them as they are.
    path("ws/evals/<str:eval_id>/", consumers.EvalConsumer.as_asgi()),
]
