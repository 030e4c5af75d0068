"""A full disk, simulated with SQLite's `max_page_count` on the writer's connections.

Writes fail with a clear error (API 507, commands CommandError), committed rows stay,
and writing resumes once the limit is lifted. Runs in a child process on its own file:
the cap is per connection, set by a connection_created receiver so that connections
reopened between requests get it too.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="max_page_count is SQLite's; PostgreSQL has no equivalent"
)

SCRIPT = """
import json, traceback
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import Client
from alchemy_site.auth import create_api_key
from evals import services
from evals.models import EvalResult
from tests.evals.factories import make_eval, result

CAP = {"pages": 0}
def cap(sender, connection, **kwargs):
    if CAP["pages"]:
        connection.connection.execute(f"PRAGMA max_page_count={CAP['pages']}")
connection_created.connect(cap, weak=False)

def limit(pages):
    CAP["pages"] = pages
    connection.ensure_connection()
    connection.connection.execute(f"PRAGMA max_page_count={pages or 1073741823}")

user = get_user_model().objects.create_user("disk")
_, key = create_api_key(user=user)
eval_ = make_eval(id="eval-full-2025-01-01T00:00:00")
services.add_results(eval=eval_, results=[result(t) for t in range(50)])
http = Client(HTTP_AUTHORIZATION=f"Bearer {key}", raise_request_exception=False)
pages = connection.cursor().execute("PRAGMA page_count").fetchone()[0]
limit(pages + 2)

out = {}
big = [result(t, output="z" * 4000) for t in range(50, 450)]
r = http.post(f"/api/evals/{eval_.id}/results", data=json.dumps(big), content_type="application/json")
out["api"] = [r.status_code, r.content.decode()[:300]]
out["rows_after_api"] = EvalResult.objects.filter(eval_id=eval_.id).count()

def command(*args):
    try:
        call_command(*args, stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
        return ["ok", ""]
    except BaseException as exc:
        return [type(exc).__module__ + "." + type(exc).__name__, str(exc)[:300]]

out["import"] = command("import_promptfoo", JSONL)
out["eval"] = command("eval", CONFIG, "-j", "1")
out["rows_after_commands"] = EvalResult.objects.filter(eval_id=eval_.id).count()
limit(0)
r = http.post(f"/api/evals/{eval_.id}/results", data=json.dumps(big), content_type="application/json")
out["after_space_returns"] = [r.status_code, EvalResult.objects.filter(eval_id=eval_.id).count()]
out["import_after"] = command("import_promptfoo", JSONL)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def full_disk(proc_db, tmp_path_factory) -> dict:
    from tests.evals.factories import result

    tmp_path = tmp_path_factory.mktemp("full-disk")
    jsonl = tmp_path / "import.jsonl"
    with jsonl.open("w") as handle:
        for t in range(400):
            row = result(t, output="q" * 4000)
            handle.write(json.dumps({"evalId": "eval-fimp-2025-01-01T00:00:00", **row}) + "\n")
    config = tmp_path / "full.yaml"
    tests = "\n".join(f"  - vars: {{n: '{'w' * 3000}{i}'}}" for i in range(300))
    config.write_text(f"prompts: ['{{{{n}}}}']\nproviders: [echo]\ntests:\n{tests}\n")
    out = proc_db.run(f"JSONL, CONFIG = {str(jsonl)!r}, {str(config)!r}\n" + SCRIPT)
    print(f"\nfull disk (max_page_count = page_count + 2): {json.dumps(out)}")
    return out


def test_a_full_disk_answers_507_keeps_committed_rows_and_recovers(full_disk):
    status, body = full_disk["api"]
    assert status == 507 and "out of space" in body
    assert full_disk["rows_after_api"] == 50
    assert full_disk["rows_after_commands"] == 50
    assert full_disk["after_space_returns"] == [200, 450]
    assert full_disk["import_after"][0] == "ok"


@pytest.mark.parametrize("command", ["import", "eval"])
def test_commands_on_a_full_disk_fail_with_a_command_error(full_disk, command):
    kind, message = full_disk[command]
    assert kind == "django.core.management.base.CommandError", (kind, message)
    assert "out of space" in message and "Free disk space" in message
