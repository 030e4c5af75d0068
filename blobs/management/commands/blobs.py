"""`manage.py blobs gc|stats`: free storage nothing refers to, and show what is stored."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.template.defaultfilters import filesizeformat

from blobs import conf
from blobs.services import GcReport, blob_stats, collect_garbage


class Command(BaseCommand):
    help = (
        "Blob storage care. `gc` deletes blobs no result refers to (and stored files "
        "with no blob row); `stats` shows counts and sizes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{gc,stats}", required=True)
        gc = actions.add_parser(
            "gc",
            help="Delete unreferenced blobs and orphan files, reporting what was freed.",
            called_from_command_line=getattr(parser, "called_from_command_line", None),
        )
        gc.add_argument(
            "--dry-run", action="store_true", help="Report what would be deleted; delete nothing."
        )
        gc.add_argument(
            "--min-age",
            type=int,
            default=None,
            metavar="SECONDS",
            help="Keep anything younger than this, which an ingest may still be using "
            f"(default {conf.gc_min_age_seconds()} s, BLOB_GC_MIN_AGE_SECONDS).",
        )
        actions.add_parser(
            "stats",
            help="Show blob counts, bytes, references and what GC could free.",
            called_from_command_line=getattr(parser, "called_from_command_line", None),
        )

    def handle(self, *args, action: str, **options) -> None:
        if action == "gc":
            self.gc(dry_run=options["dry_run"], min_age=options["min_age"])
        else:
            self.stats()

    def gc(self, *, dry_run: bool, min_age: int | None) -> None:
        if min_age is not None and min_age < 0:
            raise CommandError("--min-age must be 0 or more seconds.")
        try:
            report = collect_garbage(dry_run=dry_run, min_age_seconds=min_age)
        except (DatabaseError, OSError) as exc:
            raise CommandError(
                f"Blob GC stopped: {exc}. What was deleted before this stays deleted; "
                "fix the cause and run `manage.py blobs gc` again."
            ) from exc
        self.report_gc(report)

    def report_gc(self, report: GcReport) -> None:
        verb = "Would delete" if report.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {report.blobs_deleted} unreferenced blobs "
            f"({filesizeformat(report.blob_bytes_freed)}), "
            f"{report.orphan_files_deleted} orphan files and "
            f"{report.temp_files_deleted} unfinished temp files "
            f"({filesizeformat(report.orphan_bytes_freed)})."
        )
        if report.skipped_recent:
            self.stdout.write(
                f"Kept {report.skipped_recent} recent unreferenced items an ingest may still "
                "be using (see --min-age)."
            )
        freed = f"{filesizeformat(report.bytes_freed)} ({report.bytes_freed} bytes)"
        if report.dry_run:
            self.stdout.write(self.style.WARNING(f"Dry run: {freed} would be freed."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Freed {freed}."))

    def stats(self) -> None:
        stats = blob_stats()
        self.stdout.write(
            f"Blobs: {stats.blob_count} ({filesizeformat(stats.total_bytes)}, "
            f"{stats.total_bytes} bytes)\n"
            f"References: {stats.reference_count}\n"
            f"Unreferenced: {stats.unreferenced_count} "
            f"({filesizeformat(stats.unreferenced_bytes)}) — `manage.py blobs gc` frees these"
        )
        for row in stats.by_kind:
            self.stdout.write(f"  {row['kind']:<6} {row['blobs']} blobs, {row['references']} refs")
        for row in stats.by_mime:
            self.stdout.write(
                f"  {row['mime_type']:<24} {row['blobs']} blobs, {filesizeformat(row['bytes'])}"
            )
