from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alchemy_site.auth import create_api_key


class Command(BaseCommand):
    help = "Create an API key for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username that owns the key.")
        parser.add_argument("--name", default="", help="A label to recognise the key by.")

    def handle(self, *args, user: str, name: str, **options) -> None:
        try:
            owner = get_user_model().objects.get_by_natural_key(user)
        except get_user_model().DoesNotExist:
            raise CommandError(
                f"No user named {user!r}. Create one with `manage.py createsuperuser` first."
            ) from None
        key, raw = create_api_key(user=owner, name=name)
        self.stderr.write(f"Created {key} for {owner}. Store it now; it is not shown again:")
        self.stdout.write(raw)
