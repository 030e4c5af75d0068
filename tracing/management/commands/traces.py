from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing.services import prune_traces

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^(\d+)([smhdw])$")


def parse_age(value: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s` or `2w` as a timedelta."""
    match = _AGE.match(value.strip().lower())
    if not match:
        raise CommandError(
            f"--older-than {value!r} is not an age; write a number and a unit, e.g. 30d, 12h, 2w."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Trace maintenance. `traces prune --older-than 30d [--dry-run]` deletes old traces."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        prune = sub.add_parser(
            "prune", help="Delete traces (and their spans) stored before a cutoff."
        )
        prune.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Age of the traces to delete: 30d, 12h, 90m, 2w …",
        )
        prune.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_prune(self, *, older_than: str, dry_run: bool, **options) -> None:
        traces, spans = prune_traces(older_than=parse_age(older_than), dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {traces} trace(s) and {spans} span(s) stored more than {older_than} ago."
            )
        )
