from __future__ import annotations

import datetime
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from alchemy_site.errors import ServiceError
from alchemy_site.progress import ProgressBar
from prompts import lifecycle, services, transfer
from prompts.embeddings import DEFAULT_EMBEDDER, get_embedder
from prompts.models import Prompt


def moment(value: str) -> datetime.datetime:
    """An ISO date or datetime; naive values are taken as UTC."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        parsed = datetime.datetime.combine(day, datetime.time.min)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = "Prompt registry care: decay, cleanup, reembed, export, import."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        decay = sub.add_parser(
            "decay",
            help="Recompute every prompt's relevance from feedback and time since last use "
            "(idempotent; safe to run from cron).",
        )
        decay.add_argument("--now", type=moment, help="Compute as of this ISO time (default: now).")

        clean = sub.add_parser(
            "cleanup", help="Archive (or delete) prompts with low relevance that nobody uses."
        )
        clean.add_argument("--below", type=float, default=0.1, help="Relevance threshold (0.1).")
        clean.add_argument(
            "--unused-days", type=int, default=90, help="Not used (or created) for this long (90)."
        )
        clean.add_argument("--delete", action="store_true", help="Delete instead of archiving.")
        clean.add_argument(
            "--force", action="store_true", help="Include prompts that have children or feedback."
        )
        clean.add_argument(
            "--dry-run", action="store_true", help="List what would go; change nothing."
        )
        clean.add_argument("--now", type=moment, help="Judge ages as of this ISO time.")

        reembed = sub.add_parser("reembed", help="Recompute embeddings with a local embedder.")
        reembed.add_argument(
            "--model", default=DEFAULT_EMBEDDER, help=f"Embedder name (default {DEFAULT_EMBEDDER})."
        )
        reembed.add_argument(
            "--all",
            action="store_true",
            help="Also replace vectors clients sent from other models (default: only this "
            "model's and missing ones).",
        )

        export = sub.add_parser("export", help="Write every prompts table as JSON or JSON lines.")
        export.add_argument("--format", choices=["json", "jsonl"], default="json")
        export.add_argument("--since", type=moment, help="Only prompts created since this date.")
        export.add_argument("-o", "--output", type=Path, help="File to write (default: stdout).")

        imp = sub.add_parser("import", help="Load an export; all or nothing.")
        imp.add_argument("file", type=Path, help="A file written by `prompts export`.")
        imp.add_argument(
            "--on-conflict",
            choices=["skip", "update", "fail"],
            default="fail",
            help="When a row with the same id exists and differs (default: fail).",
        )
        imp.add_argument(
            "--dry-run", action="store_true", help="Validate and count; write nothing."
        )

    def handle(self, *args, action: str, **options) -> None:
        handler = getattr(self, "do_" + action)
        try:
            handler(**options)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc

    def bar(self, total: int, label: str, verbosity: int) -> ProgressBar:
        return ProgressBar(self.stdout, total=total, label=label, enabled=verbosity > 0)

    def do_decay(self, *, now: datetime.datetime | None, verbosity: int, **options) -> None:
        bar = self.bar(Prompt.objects.active().count(), "decay", verbosity)
        for done in lifecycle.decay(now=now):
            bar.advance(done)
        bar.finish()
        self.stdout.write(
            self.style.SUCCESS(f"Relevance recomputed for {plural(bar.done, 'prompt')}.")
        )

    def do_cleanup(
        self,
        *,
        below: float,
        unused_days: int,
        delete: bool,
        force: bool,
        dry_run: bool,
        now: datetime.datetime | None,
        verbosity: int,
        **options,
    ) -> None:
        if not 0 <= below <= 1:
            raise CommandError("--below must be between 0 and 1.")
        if unused_days < 0:
            raise CommandError("--unused-days must not be negative.")
        plan = lifecycle.cleanup_candidates(
            below=below, unused_days=unused_days, force=force, now=now
        )
        verb = "delete" if delete else "archive"
        if verbosity > 1 or dry_run:
            for prompt in plan.candidates:
                self.stdout.write(f"  {prompt.pk}  {prompt.relevance_score:.3f}  {prompt}")
        if plan.protected:
            self.stdout.write(
                f"{plural(plan.protected, 'prompt')} kept because they have children or "
                "feedback (use --force to include them)."
            )
        if dry_run:
            self.stdout.write(f"Would {verb} {plural(len(plan.candidates), 'prompt')}.")
            return
        done = lifecycle.cleanup(plan=plan, delete=delete, now=now)
        self.stdout.write(self.style.SUCCESS(f"{verb.capitalize()}d {plural(done, 'prompt')}."))

    def do_reembed(self, *, model: str, all: bool, verbosity: int, **options) -> None:
        embedder = get_embedder(model)
        prompts = Prompt.objects.order_by("pk")
        if not all:
            prompts = prompts.filter(embedding_model__in=[embedder.name, ""])
        bar = self.bar(prompts.count(), "reembed", verbosity)
        for done in services.reembed(
            prompts=prompts.iterator(chunk_size=500), embedder=embedder.name
        ):
            bar.advance(done)
        bar.finish()
        self.stdout.write(
            self.style.SUCCESS(f"Embedded {plural(bar.done, 'prompt')} with {embedder.name}.")
        )

    def do_export(
        self, *, format: str, since: datetime.datetime | None, output: Path | None, **options
    ) -> None:
        if output is None:
            counts = transfer.export(out=self.stdout, fmt=format, since=since)
            summary = ", ".join(f"{t} {n}" for t, n in counts.items())
            sys.stderr.write(f"exported {summary}\n")
            return
        try:
            with output.open("w", encoding="utf-8") as out:
                counts = transfer.export(out=out, fmt=format, since=since)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
        summary = ", ".join(f"{t} {n}" for t, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Wrote {output}: {summary}."))

    def do_import(self, *, file: Path, on_conflict: str, dry_run: bool, **options) -> None:
        try:
            with file.open(encoding="utf-8") as stream:
                records = transfer.read_records(stream)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text ({exc.reason}).") from exc
        try:
            report = transfer.import_records(
                records=records, on_conflict=on_conflict, dry_run=dry_run
            )
        except ServiceError as exc:
            raise CommandError(f"{file}: {exc.message} Nothing was imported.") from exc
        for table in transfer.TABLES:
            created = report.created.get(table, 0)
            updated = report.updated.get(table, 0)
            skipped = report.skipped.get(table, 0)
            if created or updated or skipped:
                self.stdout.write(f"  {table}: {created} new, {updated} updated, {skipped} skipped")
        written = sum(report.created.values()) + sum(report.updated.values())
        unchanged = sum(report.skipped.values())
        prefix = "Dry run: would import" if dry_run else "Imported"
        left = f" ({unchanged} already there)" if unchanged else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{prefix} {written} of {plural(len(records), 'record')} from {file}{left}."
            )
        )
