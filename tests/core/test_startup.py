"""A damaged database stops the server and migrations with a message saying what to do."""

from __future__ import annotations

import sqlite3

import pytest

from tests.procs import manage, run_django


def damaged_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    db = home / "alchemy.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [("y" * 300,) for _ in range(2000)])
    con.commit()
    con.close()
    data = bytearray(db.read_bytes())
    data[:16] = b"definitely-not-a"  # the header magic
    db.write_bytes(bytes(data))
    return home


def test_the_asgi_server_refuses_to_start_on_a_damaged_database(tmp_path):
    home = damaged_home(tmp_path)
    with pytest.raises(AssertionError) as failure:
        run_django("import alchemy_site.asgi", home)
    message = str(failure.value)
    assert "db integrity-check" in message
    assert "db restore" in message


def test_migrate_refuses_a_damaged_database_without_a_traceback(tmp_path):
    home = damaged_home(tmp_path)
    result = manage("migrate", "--no-input", home=home)
    assert result.returncode != 0
    assert "db integrity-check" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sound_database_starts_with_what_it_loaded_kept_out_of_collections(tmp_path):
    home = tmp_path / "home"
    assert manage("migrate", "--no-input", home=home).returncode == 0
    started = run_django(
        "import gc\nset_up = gc.get_freeze_count()\nimport alchemy_site.asgi\n"
        "print(set_up, gc.get_freeze_count())",
        home,
    )
    set_up, serving = map(int, started.stdout.split())
    assert set_up > 10_000  # Django and the apps' objects, frozen by django.setup()
    assert serving > set_up  # and the server's routes and consumers once it loaded them
