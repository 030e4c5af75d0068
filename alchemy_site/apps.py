import gc

from django.apps import AppConfig


class AlchemySiteConfig(AppConfig):
    name = "alchemy_site"
    verbose_name = "Alchemy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their side effect of registering a receiver and checks.
        from alchemy_site import checks, sqlite  # noqa: F401

        # What Django's start-up loaded (its modules, the apps and their models: ~120k
        # objects) lives as long as the process. Kept out of garbage collection, a full
        # collection walks only what the process made since: in `make bench`'s add_results
        # figure two full collections walked it during the timed calls, ~100 ms each
        # (5 µs a result). The server (alchemy_site.asgi) freezes again once it has loaded
        # its routes and consumers.
        gc.freeze()
