"""manage.py export_eval ID — write an eval as promptfoo's v3 envelope, JSONL or CSV."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alchemy_site.errors import Invalid
from evals.exporters import FORMATS, export_stream
from evals.models import Eval


class Command(BaseCommand):
    help = (
        "Export an eval. json writes promptfoo's output/export envelope "
        "(promptfoo import can read it); jsonl writes one result per line; csv a flat table."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("eval_id")
        parser.add_argument("--format", choices=FORMATS, default="json")
        parser.add_argument("-o", "--output", type=Path, help="File to write (default: stdout).")
        parser.add_argument(
            "--include-media",
            action="store_true",
            help="Put images and audio back inline instead of promptfoo://blob/ references.",
        )

    def handle(  # noqa: A002
        self, *args, eval_id: str, format: str, output: Path | None, include_media: bool, **options
    ):
        if not Eval.objects.filter(pk=eval_id).exists():
            raise CommandError(
                f"No eval with id {eval_id!r}; `manage.py shell` or the API lists them."
            )
        try:
            chunks = export_stream(eval_id, format, include_media=include_media)
            if output is None:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
                return
            partial = output.with_name(output.name + ".partial")
            with partial.open("w", encoding="utf-8") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            partial.replace(output)
        except (Invalid, OSError) as exc:
            raise CommandError(f"Export failed: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Wrote {eval_id} as {format} to {output}."))
