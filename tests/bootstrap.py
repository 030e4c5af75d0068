"""Loaded by pytest (`-p tests.bootstrap`) before Django reads its settings.

Each test run gets its own ALCHEMY_HOME, so a developer's real database, keys and
signal file are never touched and parallel runs never share a SQLite file.
"""

import os
import tempfile

os.environ["ALCHEMY_HOME"] = tempfile.mkdtemp(prefix="alchemy-test-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alchemy_site.settings")
