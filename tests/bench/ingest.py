"""Ingest: add_results and POST /results against a bare executemany; bytes per result."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import httpx
from django.db import connection

from alchemy_site import sqlite as app_sqlite
from evals import prepare, search, services
from evals.models import Eval, EvalResult, PromptText
from tests.bench.common import Context, Figure, log, prompt_specs, result_batches

BASELINE_TABLE = "bench_baseline_result"
# The tables a result row's foreign keys name, and where in RESULT_COLUMNS the key is.
PARENTS = (
    (Eval._meta.db_table, services.RESULT_COLUMNS.index("eval_id")),
    (PromptText._meta.db_table, services.RESULT_COLUMNS.index("prompt_text_id")),
)
BASELINE_FTS = "bench_baseline_fts"
TABLE = EvalResult._meta.db_table


# --- the bare baseline ----------------------------------------------------------------


class Baseline:
    """A bare `executemany` of the same rows into a copy of the results table.

    SQLite: a separate file with the app's pragmas and the table + indexes recreated from
    the real table's DDL in sqlite_master, its foreign keys included (to parent tables
    holding just the keys its rows name, filled before timing: the app checks both).
    PostgreSQL: `CREATE TABLE … (LIKE … INCLUDING ALL)` in the same database (indexes
    included, the trigram one too; no foreign keys). The rows are encoded before timing:
    the baseline is the database's own cost, nothing else.
    """

    def __init__(self, ctx: Context, *, text_index: bool = False) -> None:
        self.vendor = ctx.vendor
        self.rows = 0
        self.text_index = text_index
        if self.vendor == "sqlite":
            name = "baseline-text-index.db" if text_index else "baseline.db"
            self.conn: Any = sqlite3.connect(ctx.home / name, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            for pragma in app_sqlite.PRAGMAS:  # the app's connections' own
                self.conn.execute(pragma)
            for ddl in sqlite_ddl() + (sqlite_text_index_ddl() if text_index else []):
                self.conn.execute(ddl)
            self.placeholder = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(postgres_dsn(), autocommit=True)
            self.conn.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
            self.conn.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE {TABLE} INCLUDING ALL)")
            self.placeholder = "%s"
        columns = ", ".join(services.RESULT_COLUMNS)
        marks = ", ".join([self.placeholder] * len(services.RESULT_COLUMNS))
        self.sql = f"INSERT INTO {BASELINE_TABLE} ({columns}) VALUES ({marks})"

    def add_parents(self, rows: list[tuple]) -> None:
        """The parent rows `rows` name (SQLite), as create_eval stores them: not timed."""
        if self.vendor == "sqlite":
            for table, position in PARENTS:
                keys = {(row[position],) for row in rows if row[position] is not None}
                self.conn.executemany(f"INSERT OR IGNORE INTO {table} (id) VALUES (?)", keys)

    def insert(self, rows: list[tuple], *, parents: bool = True) -> float:
        """One transaction, one executemany; returns the seconds it took. `parents=False`:
        add_parents was called for these rows already."""
        if parents:
            self.add_parents(rows)
        t0 = time.perf_counter()
        if self.vendor == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            if self.text_index:  # as evals.search keeps it: one statement per batch
                last = self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {BASELINE_TABLE}")
                after = last.fetchone()[0]
            self.conn.executemany(self.sql, rows)
            if self.text_index:
                self.conn.execute(
                    f"INSERT INTO {BASELINE_FTS}(rowid, {search.COLUMN}) SELECT id, "
                    f"{search.COLUMN} FROM {BASELINE_TABLE} WHERE id > ?",
                    [after],
                )
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction(), self.conn.cursor() as cursor:
                cursor.executemany(self.sql, rows)
        self.rows += len(rows)
        return time.perf_counter() - t0

    def size_bytes(self) -> int:
        if self.vendor == "sqlite":
            return sqlite_size(self.conn, lambda name: name.startswith(BASELINE_TABLE) or
                               name.startswith("bench_idx_"))  # fmt: skip
        return self.conn.execute("SELECT pg_total_relation_size(%s)", [BASELINE_TABLE]).fetchone()[
            0
        ]


def sqlite_ddl() -> list[str]:
    """The results table and its indexes as Django created them, renamed for the baseline."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
            "ORDER BY type = 'index'",
            [TABLE],
        )
        rows = cursor.fetchall()
    ddl = [f'CREATE TABLE "{table}" ("id" text NOT NULL PRIMARY KEY)' for table, _ in PARENTS]
    for kind, name, sql in rows:
        sql = re.sub(rf'"?{TABLE}"?', f'"{BASELINE_TABLE}"', sql, count=1 if kind == "table" else 0)
        if kind == "index":
            sql = sql.replace(f'"{name}"', f'"bench_idx_{name}"', 1)
        ddl.append(sql)
    return ddl


def sqlite_text_index_ddl() -> list[str]:
    """The app's FTS5 text index (evals.search) over the baseline table: its table as
    migrated (content, tokenizer, detail) and its settings (automerge)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [search.FTS_TABLE])
        fts = cursor.fetchone()[0]
        cursor.execute(f"SELECT k, v FROM {search.FTS_TABLE}_config WHERE k != 'version'")
        config = cursor.fetchall()
    fts = fts.replace(search.FTS_TABLE, BASELINE_FTS, 1).replace(
        f"content='{TABLE}'", f"content='{BASELINE_TABLE}'"
    )
    return [
        fts,
        *(
            f"INSERT INTO {BASELINE_FTS}({BASELINE_FTS}, rank) VALUES ('{k}', {int(v)})"
            for k, v in config
        ),
    ]


def sqlite_size(conn: Any, wanted: Callable[[str], bool]) -> int:
    """Bytes of the pages (tables and indexes) whose name `wanted` accepts (dbstat)."""
    return sum(
        size for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        if wanted(name)
    )  # fmt: skip


def postgres_dsn() -> str:
    settings = connection.settings_dict
    parts = [
        f"dbname={settings['NAME']}",
        f"host={settings.get('HOST') or '127.0.0.1'}",
        f"port={settings.get('PORT') or 5432}",
        f"user={settings.get('USER') or 'postgres'}",
    ]
    if settings.get("PASSWORD"):
        parts.append(f"password={settings['PASSWORD']}")
    return " ".join(parts)


def baseline_rows(eval_id: str, results: list[dict[str, Any]]) -> list[tuple]:
    """The rows add_results stores for `eval_id`, as the tuples a bare executemany takes:
    its prepared rows with the values it puts in front (services.insert_params), so the
    same bytes (eval id, prompt text, timestamps). Prepared before timing: the baseline is
    the database's own cost."""
    return services.insert_params(eval_id, prepare.prepare_results(results).rows)


# --- the figures ------------------------------------------------------------------------


def new_eval(description: str) -> str:
    return services.create_eval(
        config={"description": description}, prompts=prompt_specs(), description=description,
        author="bench", is_redteam=True,
    ).id  # fmt: skip


# Batches are timed in turns of BLOCK: the baseline's, then the app's, then the baseline's…
BLOCK = 5


def blocks(batches: Iterator[list[dict]]) -> Iterator[list[list[dict]]]:
    while block := list(islice(batches, BLOCK)):
        yield block


def fold_wal_in() -> float:
    """Seconds to finish folding the app database's WAL into its file (SQLite).

    The app checkpoints on a thread of its own after each batch (alchemy_site.sqlite
    .Checkpointer), beside the writer, where the baseline's commits checkpoint in line.
    What that thread has not done when a turn of the app's batches ends is done here
    and counted as the app's time, so none of it runs while the baseline is timed.
    """
    if connection.vendor != "sqlite":
        return 0.0
    from alchemy_site.sqlite import checkpoint_passive, database_file

    t0 = time.perf_counter()
    until = t0 + 10  # a reader's old snapshot can keep the last pages out a while
    while time.perf_counter() < until:
        done = checkpoint_passive(database_file(connection))
        if done is None or (done[0] == 0 and done[1] == done[2]):
            break
        time.sleep(0.001)  # the checkpointer thread is at it, or a reader: try again
    return time.perf_counter() - t0


def measure_add_results(ctx: Context, baseline: Baseline) -> None:
    """Batches alternate between the baseline and add_results in turns of BLOCK, so noise
    hits both alike; each of the app's turns ends with its WAL folded in (fold_wal_in).

    On SQLite a second baseline also keeps the app's FTS5 text index in step, as
    evals.search does; PostgreSQL's baseline has its trigram index already (its table is
    copied with every index). That ratio is reported beside the target's.
    """
    text_baseline = Baseline(ctx, text_index=True) if ctx.vendor == "sqlite" else None
    text_s = 0.0
    eval_ = services.create_eval(
        config={}, prompts=prompt_specs(), description="bench ingest", author="bench"
    )
    size_before = results_size_bytes(ctx)
    app_s = base_s = folding_s = 0.0
    stored = 0
    for block in blocks(result_batches(ctx.scale.ingest_batches * 250, seed=11)):
        for batch in block:
            rows = baseline_rows(eval_.id, batch)
            base_s += baseline.insert(rows)
            if text_baseline is not None:
                text_s += text_baseline.insert(rows)
        for batch in block:
            t0 = time.perf_counter()
            services.add_results(eval=eval_, results=batch)
            app_s += time.perf_counter() - t0
            stored += len(batch)
        folded = fold_wal_in()
        app_s += folded
        folding_s += folded
        if stored % 10_000 == 0:
            log(f"ingest: {stored:,} results")
    app_rate, base_rate = stored / app_s, baseline.rows / base_s
    ctx.add(Figure("ingest", "ingest add_results (batches of 1,000)", app_rate, "results/s",
                   "≥ 0.5 × baseline", base_rate, app_rate / base_rate,
                   app_rate / base_rate >= 0.5,
                   {"results": stored, "app_s": round(app_s, 3),
                    "of_it_folding_wal_in_s": round(folding_s, 3)}))  # fmt: skip
    if text_baseline is not None:
        text_rate = text_baseline.rows / text_s
        ctx.add(Figure("ingest", "ingest add_results vs a baseline with the FTS5 index too",
                       app_rate, "results/s", "report", text_rate, app_rate / text_rate, None,
                       {"results": stored}))  # fmt: skip
    app_bytes = (results_size_bytes(ctx) - size_before) / stored
    base_bytes = baseline.size_bytes() / baseline.rows
    ctx.add(Figure("ingest", "database size per result", app_bytes, "bytes/result", "report",
                   base_bytes, app_bytes / base_bytes, None,
                   {"includes": "table, indexes" + (", FTS5 index" if ctx.vendor == "sqlite"
                                                    else " (trigram GIN included)")}))  # fmt: skip


def results_size_bytes(ctx: Context) -> int:
    """Bytes of the results table, its indexes and its text index."""
    if ctx.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master")
            owners = dict(cursor.fetchall())
        return sqlite_size(
            connection.connection,
            lambda name: owners.get(name) == TABLE or name.startswith("evals_result_fts"),
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [TABLE])
        return cursor.fetchone()[0]


def measure_http_ingest(ctx: Context, baseline: Baseline) -> None:
    """POST /api/evals/{id}/results on the running server, in turns with the baseline as
    measure_add_results takes them."""
    assert ctx.server is not None
    eval_id = new_eval("bench http ingest")
    headers = {"Authorization": f"Bearer {ctx.api_key}", "Content-Type": "application/json"}
    url = f"{ctx.server.base}/api/evals/{eval_id}/results"
    app_s = base_s = 0.0
    stored = base_rows = 0
    with httpx.Client(headers=headers, timeout=120) as client:
        csrf_blocked = client.post(url, content=b"[]").status_code == 403
        if csrf_blocked:
            # An API-key POST fails SessionAuth's CSRF check (see the report); send a token
            # pair so the ingest itself can still be measured.
            token = "b" * 32
            client.headers["X-CSRFToken"] = token
            client.cookies.set("csrftoken", token)
            client.post(url, content=b"[]").raise_for_status()
        for block in blocks(result_batches(ctx.scale.http_batches * 250, seed=13)):
            for batch in block:
                rows = baseline_rows(eval_id, batch)
                base_s += baseline.insert(rows)
                base_rows += len(rows)
            for batch in block:
                body = json.dumps(batch).encode()
                t0 = time.perf_counter()
                response = client.post(url, content=body)
                app_s += time.perf_counter() - t0
                response.raise_for_status()
                stored += response.json()["stored"]
            app_s += fold_wal_in()  # the server's checkpointer: the same database file
    app_rate, base_rate = stored / app_s, base_rows / base_s
    ctx.add(Figure("ingest", "ingest POST /api/evals/{id}/results (1,000/request)", app_rate,
                   "results/s", "≥ 0.25 × baseline", base_rate, app_rate / base_rate,
                   app_rate / base_rate >= 0.25,
                   {"results": stored, "api_key_post_refused_by_csrf": csrf_blocked}))  # fmt: skip
