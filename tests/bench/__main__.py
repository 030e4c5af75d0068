"""`python -m tests.bench [--scale small|full] [--home DIR] [--only GROUP ...]`.

Sets its own ALCHEMY_HOME (a temp dir unless --home), migrates it, builds data through
the write path and prints the figures. With DATABASE_URL (PostgreSQL) it creates a
scratch database next to the named one, runs there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from tests.bench.common import REPO, SCALES, Context, child_env, log, start_server

GROUPS = ("ingest", "http-ingest", "reads", "http", "live", "search", "semantic", "import")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--home", type=Path, help="ALCHEMY_HOME to use (default: a temp dir)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="run only these groups")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--keep", action="store_true", help="keep the home / scratch database")
    return parser.parse_args(argv)


def scratch_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on DATABASE_URL's server; returns its URL and how to drop it."""
    import psycopg

    parts = urlparse(url)
    name = f"alchemy_bench_{os.getpid()}"
    admin = urlunparse(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunparse(parts._replace(path=f"/{name}")), drop


def setup_django(home: Path) -> str:
    os.environ["ALCHEMY_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alchemy_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    # Quiet per-request client logs and whitenoise's missing-STATIC_ROOT note.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No directory at")
    return connection.vendor


def create_api_user(ctx: Context) -> None:
    from django.contrib.auth import get_user_model

    from alchemy_site.auth import create_api_key

    user = get_user_model().objects.create_user("bench", password="bench-password-not-secret")
    _, ctx.api_key = create_api_key(user=user, name="bench")
    ctx.username = user.get_username()


def run(ctx: Context, groups: set[str]) -> None:
    from tests.bench import importing, ingest, live, reads, search

    def wanted(*names: str) -> bool:
        return any(name in groups for name in names)

    baseline = ingest.Baseline(ctx) if wanted("ingest", "http-ingest") else None
    # Both ingest figures go first, so the app's table and the baseline's are alike in size.
    # add_results is timed before the server starts: on two cores its live-update watcher,
    # woken by every batch's signal write, took CPU from the writer being measured.
    if wanted("ingest"):
        ingest.measure_add_results(ctx, baseline)
    if wanted("http-ingest", "http", "live"):
        ctx.server = start_server(child_env(), ctx.home / "daphne.log")
    try:
        if wanted("http-ingest"):
            ingest.measure_http_ingest(ctx, baseline)
        if wanted("reads", "http", "live", "search"):
            reads.build_big_eval(ctx)
        if wanted("reads"):
            reads.measure_pages(ctx)
            reads.measure_stats(ctx)
        if wanted("search"):
            search.measure_text_search(ctx)
        if wanted("reads"):
            reads.measure_eval_page(ctx)
            reads.measure_compare(ctx)
        if wanted("http"):
            reads.measure_pages_http(ctx)
        if wanted("live"):
            live.measure_live(ctx)
    finally:
        if ctx.server is not None:
            ctx.server.stop()
    if wanted("semantic"):
        search.measure_semantic_search(ctx)
    if wanted("import"):
        importing.measure_imports(ctx)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    scale = SCALES[args.scale]
    home = args.home or Path(tempfile.mkdtemp(prefix="alchemy-bench-"))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    drop: Callable[[], None] | None = None
    url = os.environ.get("DATABASE_URL")
    if url:
        os.environ["DATABASE_URL"], drop = scratch_postgres(url)
    started = datetime.now(UTC)
    try:
        vendor = setup_django(home)
        vendor_label = "PostgreSQL" if vendor == "postgresql" else "SQLite"
        log(f"{vendor_label}, scale {scale.name}, home {home}")
        ctx = Context(scale=scale, home=home, vendor=vendor)
        create_api_user(ctx)
        try:
            run(ctx, set(args.only or GROUPS))
        except Exception:
            traceback.print_exc()
            log("a group failed; reporting the figures measured so far")
        from tests.bench import report

        sys.stdout.write(report.table(ctx, started, vendor_label) + "\n")
        out = args.out / f"{vendor}-{scale.name}.json"
        report.write_json(ctx, out, started, vendor_label)
        log(f"wrote {out}")
        return 0 if all(f.ok is not False for f in ctx.figures) else 1
    finally:
        if drop is not None and not args.keep:
            from django.db import connections

            connections.close_all()
            drop()
        if args.home is None and not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
