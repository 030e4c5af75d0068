"""manage.py import_promptfoo PATH — bring promptfoo evals into Alchemy."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from pathlib import Path

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from alchemy_site.sqlite import bulk_write_pragmas
from evals.importers import ImportFailed, import_path

# An import allocates millions of small, short-lived dicts (parsed results, rows), so
# CPython's cyclic collector ran every 700 allocations and now and then walked all of
# Django's long-lived objects too: ~12% of the import's CPU at 100,000 results.
IMPORT_GC_THRESHOLD = (50_000, 20, 10)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze what is alive now (out of every collection) and collect less often meanwhile.

    Garbage cycles are still collected: the parse and the writes keep only a few batches
    alive, so memory stays bounded (the bench checks the 1M/100k peak ratio).
    """
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(*IMPORT_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if not frozen:  # else someone froze before us, and unfreezing would undo theirs
            gc.unfreeze()


class Command(BaseCommand):
    help = (
        "Import promptfoo evals: an output/export JSON file (v3 envelope or older v2/v3), "
        "a JSONL file of results, or a promptfoo SQLite database (~/.promptfoo/promptfoo.db: "
        "every eval, or --eval ID). Ids, authors and creation times are kept; importing an "
        "id that exists is refused unless --new-id or --force."
    )
    # The checks an import can fail on; not the URL checks, which import every API router
    # (~0.15 s of each run, the bench times whole imports).
    requires_system_checks = [Tags.models, Tags.database, Tags.security, Tags.compatibility]

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--new-id", action="store_true", help="Import under a fresh eval id.")
        group.add_argument(
            "--force", action="store_true", help="Replace an existing eval with the same id."
        )
        parser.add_argument(
            "--eval", action="append", dest="eval_ids", metavar="ID",
            help="From a promptfoo database, import only this eval (repeatable).",
        )  # fmt: skip

    def handle(
        self, *args, path: Path, new_id: bool, force: bool, eval_ids, verbosity: int, **options
    ):
        started = time.monotonic()
        last_report = [0.0]

        def progress(count: int) -> None:
            now = time.monotonic()
            if verbosity and now - last_report[0] >= 1:
                last_report[0] = now
                rate = count / max(now - started, 1e-6)
                self.stdout.write(f"  {count:,} results ({rate:,.0f}/s)")

        try:
            with fewer_collections(), bulk_write_pragmas(connection):
                imported = import_path(
                    path, new_id=new_id, force=force, eval_ids=eval_ids, progress=progress
                )
        except ImportFailed as exc:
            raise CommandError(f"Nothing imported. {exc}") from None
        except DatabaseError as exc:
            # Imported here: alchemy_site.api mounts every router, ~0.15 s of startup that
            # every import paid (the bench times the whole command).
            from alchemy_site.api import out_of_space

            # Each eval imports in one transaction, so the one in progress is rolled back
            # (from a promptfoo database, evals before it stay imported).
            if out_of_space(exc):
                raise CommandError(
                    "The database is out of space; the eval being imported was not stored. "
                    "Free disk space and retry."
                ) from exc
            raise CommandError(f"The eval being imported was not stored: {exc}") from exc
        elapsed = time.monotonic() - started
        for item in imported:
            skipped = f", {item.skipped} duplicates skipped" if item.skipped else ""
            self.stdout.write(
                self.style.SUCCESS(f"Imported {item.eval_id}: {item.results} results{skipped}.")
            )
        total = sum(item.results for item in imported)
        if verbosity and total:
            self.stdout.write(
                f"{total:,} results in {elapsed:.1f}s ({total / max(elapsed, 1e-6):,.0f}/s)."
            )
