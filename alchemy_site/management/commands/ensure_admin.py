from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from alchemy_site.home import write_private_file


class Command(BaseCommand):
    help = (
        "Create the `admin` superuser with a random password if no superuser exists, "
        "print how to log in, and save the password 0600 in ALCHEMY_HOME."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the server listens."
        )
        parser.add_argument("--username", default="admin")

    def handle(self, *args, url: str, username: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"Alchemy is at {url} — log in with your admin account.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username, password=password)
        write_private_file(settings.ADMIN_PASSWORD_FILE, f"{username}\n{password}\n")
        self.stdout.write(self.style.SUCCESS("Created the first admin user."))
        self.stdout.write(f"  Open:     {url}accounts/login/")
        self.stdout.write(f"  Username: {username}")
        self.stdout.write(f"  Password: {password}")
        self.stdout.write(f"  (also saved in {settings.ADMIN_PASSWORD_FILE}, mode 0600)")
