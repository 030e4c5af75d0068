"""`manage.py eval CONFIG`: run a promptfoo-style eval and store it as it runs."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from alchemy_site.api import out_of_space
from alchemy_site.errors import ServiceError
from alchemy_site.progress import ProgressBar
from evals import exporters
from evals.evaluator import output
from evals.evaluator.config import ConfigError, EvalConfig, load_config, parse_config
from evals.evaluator.runner import Runner, RunOutcome, columns, prompt_columns
from evals.models import Eval, EvalResult, EvalStatus
from evals.services import complete_eval, create_eval

INTERRUPTED_EXIT = 130


class Command(BaseCommand):
    help = (
        "Run an eval from a promptfoo-style YAML/JSON config (prompts × providers × tests), "
        "storing results as they finish. Ctrl-C interrupts; --resume EVAL_ID continues."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("config", nargs="?", help="Path to the YAML or JSON config.")
        parser.add_argument("--resume", metavar="EVAL_ID", help="Continue an interrupted eval.")
        parser.add_argument(
            "-j", "--max-concurrency", type=int, metavar="N",
            help="Provider calls in flight at once (default: evaluateOptions.maxConcurrency or 4).",
        )  # fmt: skip
        parser.add_argument(
            "--repeat", type=int, metavar="N", help="Run every test N times (default 1)."
        )
        parser.add_argument(
            "--no-write", action="store_true", help="Print a table only; store nothing."
        )
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="Also write promptfoo's output (.json or .yaml)."
        )
        parser.add_argument("--author", default="", help="Recorded as the eval's author.")
        parser.add_argument("--description", help="Overrides the config's description.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.eval_: Eval | None = None
        try:
            self.run_eval(options)
        except DatabaseError as exc:
            raise CommandError(_database_problem(exc, self.eval_)) from exc

    def run_eval(self, options: dict[str, Any]) -> None:
        self.progress_enabled = options["verbosity"] > 0
        self.check_output(options)
        # httpx logs every request at INFO; the progress bar is this command's output.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if options["resume"]:
            eval_, config, skip = self.resume(options)
        else:
            if not options["config"]:
                raise CommandError(
                    "Give a config file (manage.py eval CONFIG) or --resume EVAL_ID."
                )
            config = self.load(options["config"])
            self.apply_overrides(config, options)
            eval_, skip = None, set()
        for warning in config.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        if not options["no_write"] and eval_ is None:
            eval_ = self.create(config, options)
        self.eval_ = eval_

        bar = ProgressBar(self.stdout, enabled=self.progress_enabled)
        runner = Runner(
            config,
            eval=eval_,
            max_concurrency=options["max_concurrency"],
            progress=lambda tally: bar.update(tally.done, tally.total, output.tally_note(tally)),
            keep_results=options["no_write"],
        )
        try:
            outcome = runner.run(skip=skip)
        except Exception as exc:
            if eval_ is not None:
                # The database may be what failed (a full disk): keep the first error.
                with contextlib.suppress(DatabaseError):
                    complete_eval(eval=eval_, status=EvalStatus.FAILED)
            if isinstance(exc, DatabaseError):
                raise  # handle() explains it
            raise CommandError(f"The eval failed: {exc}") from exc
        finally:
            bar.finish()
        if eval_ is not None:
            status = EvalStatus.INTERRUPTED if outcome.interrupted else EvalStatus.COMPLETE
            complete_eval(
                eval=eval_,
                status=status,
                duration_ms=(eval_.duration_ms or 0) + outcome.duration_ms,
            )
        self.report(config, eval_, outcome, options)

    # --- steps -------------------------------------------------------------------------

    def write_output(
        self, path: Path, config: EvalConfig, eval_: Eval | None, outcome: RunOutcome
    ) -> None:
        fmt = path.suffix.lstrip(".").lower()
        with path.open("w", encoding="utf-8") as handle:
            if eval_ is not None:
                # The stored eval, streamed by the exporters: includes resumed results.
                handle.writelines(exporters.export_stream(eval_.id, fmt))
            else:
                cols = columns(config)
                data = output.envelope(
                    eval_id=None, config=config.to_dict(), cols=cols, results=outcome.results
                )
                output.write_envelope(handle, data, fmt)
        self.stdout.write(f"Wrote {path}.")

    def check_output(self, options: dict[str, Any]) -> None:
        if not options["output"]:
            return
        fmt = Path(options["output"]).suffix.lstrip(".").lower()
        formats = output.FORMATS if options["no_write"] else exporters.FORMATS
        if fmt not in formats:
            raise CommandError(
                f"-o {options['output']}: the file name must end in one of "
                + ", ".join(f".{f}" for f in formats)
                + "."
            )

    def load(self, path: str) -> EvalConfig:
        try:
            return load_config(path)
        except ConfigError as exc:
            raise CommandError(_config_problem(path, exc)) from None

    def apply_overrides(self, config: EvalConfig, options: dict[str, Any]) -> None:
        for name in ("max_concurrency", "repeat"):
            value = options[name]
            if value is not None and value < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["repeat"]:
            config.repeat = options["repeat"]
        if options["max_concurrency"]:
            config.max_concurrency = options["max_concurrency"]
        if options["description"] is not None:
            config.description = options["description"]

    def resume(self, options: dict[str, Any]) -> tuple[Eval, EvalConfig, set[tuple[int, int]]]:
        if options["no_write"] or options["repeat"] or options["config"]:
            raise CommandError(
                "--resume takes the config stored with the eval; drop CONFIG, --repeat and --no-write."
            )
        eval_id = options["resume"]
        eval_ = Eval.objects.filter(pk=eval_id).first()
        if eval_ is None:
            raise CommandError(f"No eval {eval_id!r}; `manage.py eval` prints the id it creates.")
        if eval_.status == EvalStatus.COMPLETE:
            raise CommandError(f"Eval {eval_id} is already complete; nothing to resume.")
        try:
            config = parse_config(eval_.config, base_dir=Path.cwd())
        except ConfigError as exc:
            raise CommandError(_config_problem(f"the config stored with {eval_id}", exc)) from None
        if options["max_concurrency"]:
            config.max_concurrency = options["max_concurrency"]
        stored = set(EvalResult.objects.filter(eval=eval_).values_list("test_idx", "prompt_idx"))
        self.stdout.write(f"Resuming {eval_id}: {len(stored)} results already stored.")
        return eval_, config, stored

    def create(self, config: EvalConfig, options: dict[str, Any]) -> Eval:
        try:
            eval_ = create_eval(
                config=config.to_dict(),
                prompts=prompt_columns(config),
                tests=config.tests,
                tags=config.tags,
                author=options["author"],
                description=config.description,
            )
        except ServiceError as exc:
            raise CommandError(f"Could not create the eval: {exc.message}") from exc
        self.stdout.write(f"Eval {eval_.id} started.")
        return eval_

    def report(
        self, config: EvalConfig, eval_: Eval | None, outcome: RunOutcome, options: dict[str, Any]
    ) -> None:
        tally = outcome.tally
        if options["no_write"]:
            for line in output.results_table(columns(config), outcome.results):
                self.stdout.write(line)
        if options["output"]:
            self.write_output(Path(options["output"]), config, eval_, outcome)
        rate = f"{tally.passes / tally.done:.1%}" if tally.done else "n/a"
        summary = (
            f"{tally.passes} passed, {tally.failures} failed, {tally.errors} errors "
            f"({rate} pass rate) in {outcome.duration_ms / 1000:.1f} s"
        )
        if outcome.interrupted:
            self.stdout.write(
                self.style.WARNING(f"Interrupted after {tally.done} of {tally.total}: {summary}.")
            )
            if eval_ is not None:
                raise CommandError(
                    f"Eval {eval_.id} interrupted; {tally.stored} results stored. "
                    f"Continue with: manage.py eval --resume {eval_.id}",
                    returncode=INTERRUPTED_EXIT,
                )
            raise CommandError("Interrupted.", returncode=INTERRUPTED_EXIT)
        style = self.style.SUCCESS if tally.failures + tally.errors == 0 else self.style.WARNING
        self.stdout.write(style(summary + "."))
        if eval_ is not None:
            self.stdout.write(f"Stored as {eval_.id} ({tally.stored} results).")


def _database_problem(exc: DatabaseError, eval_: Eval | None) -> str:
    full = out_of_space(exc)
    problem = "The database is out of space" if full else f"The database failed ({exc})"
    fix = "Free disk space, then" if full else "Once it is back,"
    if eval_ is None:
        return f"{problem}; no eval was created. {fix} run the command again."
    return (
        f"{problem}; results stored so far are kept. "
        f"{fix} continue with: manage.py eval --resume {eval_.id}"
    )


def _config_problem(source: str, exc: ConfigError) -> str:
    lines = "\n".join(f"  - {error}" for error in exc.errors)
    return f"{source} has {len(exc.errors)} problem(s):\n{lines}"
