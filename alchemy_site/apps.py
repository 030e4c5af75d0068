from django.apps import AppConfig


class AlchemySiteConfig(AppConfig):
    name = "alchemy_site"
    verbose_name = "Alchemy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their side effect of registering a receiver and checks.
        from alchemy_site import checks, sqlite  # noqa: F401
