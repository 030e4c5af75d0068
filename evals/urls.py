from django.urls import path

from evals import views

app_name = "evals"
urlpatterns = [
    path("", views.eval_list, name="list"),
    path("compare/", views.compare, name="compare"),
    # Eval ids contain colons (never slashes): <str:> takes them as they are.
    path("<str:eval_id>/", views.eval_detail, name="detail"),
    path("<str:eval_id>/delete/", views.eval_delete, name="delete"),
    path("<str:eval_id>/results/<int:result_id>/", views.result_detail, name="result"),
    path("<str:eval_id>/results/<int:result_id>/rate/", views.rate_result, name="rate"),
]
