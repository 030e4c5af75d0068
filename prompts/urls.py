from django.urls import path

from prompts import views

app_name = "prompts"
urlpatterns = [
    path("", views.prompt_list, name="list"),
    path("<uuid:prompt_id>/", views.prompt_detail, name="detail"),
    path("<uuid:prompt_id>/feedback/", views.add_feedback, name="feedback"),
]
