from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from alchemy_site import dbcare
from alchemy_site.startup import DatabaseDamaged, verify_database


class Command(migrate.Command):
    help = (
        "Django's migrate; on SQLite, backs the database up to ALCHEMY_HOME/backups first "
        "when migrations are pending (the newest 5 are kept). `--plan` is the dry run."
    )

    def execute(self, *args, **options):
        # Before the system checks, which would open the file and die with a traceback.
        try:
            verify_database()
        except DatabaseDamaged as exc:
            raise CommandError(str(exc)) from exc
        return super().execute(*args, **options)

    def handle(self, *args, **options):
        if not options.get("plan") and not options.get("fake") and self.has_pending(options):
            dest = dbcare.backup_before_migrate()
            if dest is not None and options.get("verbosity", 1) > 0:
                self.stdout.write(f"Backed up the database to {dest} before migrating.")
        return super().handle(*args, **options)

    @staticmethod
    def has_pending(options) -> bool:
        connection = connections[options.get("database") or "default"]
        executor = MigrationExecutor(connection)
        if not executor.loader.applied_migrations:
            return False  # a new database: nothing to lose
        if options.get("app_label"):
            return True  # a named target may roll back, which drops data too
        targets = executor.loader.graph.leaf_nodes()
        return bool(executor.migration_plan(targets))
