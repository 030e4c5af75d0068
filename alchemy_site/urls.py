from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from alchemy_site import views
from alchemy_site.api import api
from alchemy_site.login import RateLimitedLoginView

handler404 = "alchemy_site.api.not_found"
handler500 = "alchemy_site.api.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", include("tracing.urls_otlp")),
    path("prompts/", include("prompts.urls")),
    path("evals/", include("evals.urls")),
    path("blobs/", include("blobs.urls")),
    path("traces/", include("tracing.urls")),
]
