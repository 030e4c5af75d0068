from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from alchemy_site import dbcare


def human(n: int | None) -> str:
    """Bytes as Django's filesizeformat shows them; "-" where the size is unknown."""
    return "-" if n is None else filesizeformat(n)


class Command(BaseCommand):
    help = "Database care: integrity-check, vacuum, analyze, stats, backup, restore, checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        check = sub.add_parser(
            "integrity-check", help="Check pages, indexes and foreign keys; exit 1 on any problem."
        )
        check.add_argument(
            "--file", type=Path, help="Check this SQLite file (a backup, say) instead."
        )
        vac = sub.add_parser("vacuum", help="Rebuild the database file, returning free pages.")
        vac.add_argument("--into", type=Path, help="Write a compacted copy here instead (SQLite).")
        sub.add_parser(
            "analyze", help="Refresh the query planner's statistics; merge the search index."
        )
        sub.add_parser("stats", help="Rows, bytes and indexes per table; file, WAL and free sizes.")
        back = sub.add_parser("backup", help="A consistent copy taken while writers run.")
        back.add_argument("path", type=Path)
        rest = sub.add_parser("restore", help="Replace the database with a backup.")
        rest.add_argument("path", type=Path)
        rest.add_argument(
            "--yes", action="store_true", help="Confirm: the current data is replaced."
        )
        sub.add_parser("checkpoint", help="Fold the WAL into the database file (TRUNCATE).")

    def handle(self, *args, action: str, **options) -> None:
        handler = getattr(self, "do_" + action.replace("-", "_"))
        try:
            handler(**options)
        except dbcare.DatabaseCareError as exc:
            raise CommandError(exc.message) from exc

    def do_integrity_check(self, *, file: Path | None, **options) -> None:
        report = dbcare.integrity_check(file)
        for problem in report.problems:
            self.stderr.write(self.style.ERROR(problem))
        if not report.ok:
            raise CommandError(
                f"{len(report.problems)} problem(s) found. Restore a good copy with "
                "`manage.py db restore PATH --yes` (backups live in ALCHEMY_HOME/backups)."
            )
        self.stdout.write(self.style.SUCCESS(f"ok ({', '.join(report.checked)})"))

    def do_vacuum(self, *, into: Path | None, **options) -> None:
        before, after = dbcare.vacuum(into)
        where = f" into {into}" if into else ""
        self.stdout.write(self.style.SUCCESS(f"vacuumed{where}: {human(before)} → {human(after)}"))

    def do_analyze(self, **options) -> None:
        dbcare.analyze()
        self.stdout.write(self.style.SUCCESS("statistics refreshed"))

    def do_stats(self, **options) -> None:
        tables, files = dbcare.table_stats()
        width = max((len(t.name) for t in tables), default=10)
        self.stdout.write(f"{'table'.ljust(width)}  {'rows':>12}  {'bytes':>10}  indexes")
        for t in tables:
            self.stdout.write(
                f"{t.name.ljust(width)}  {t.rows:>12,}  {human(t.bytes):>10}  {len(t.indexes)}"
            )
        for name, value in files.items():
            shown = value if name == "page_size" else human(value)
            self.stdout.write(f"{name}: {shown}")

    def do_backup(self, *, path: Path, **options) -> None:
        dest = dbcare.backup(path)
        self.stdout.write(
            self.style.SUCCESS(f"backup written to {dest} ({human(dest.stat().st_size)})")
        )

    def do_restore(self, *, path: Path, yes: bool, **options) -> None:
        if not yes:
            raise CommandError(
                "restore replaces every row of the current database; run again with --yes to confirm."
            )
        dbcare.restore(path)
        self.stdout.write(self.style.SUCCESS(f"restored from {path}"))

    def do_checkpoint(self, **options) -> None:
        busy, log, done = dbcare.checkpoint()
        self.stdout.write(
            self.style.SUCCESS(f"checkpoint: {done}/{log} WAL frames folded (busy={busy})")
        )
