from django.urls import path

from tracing import views

app_name = "tracing"
urlpatterns = [
    path("", views.trace_list, name="list"),
    path("<str:trace_id>/", views.trace_detail, name="detail"),
]
