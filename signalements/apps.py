from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SignalementsConfig(AppConfig):
    name = "signalements"
    verbose_name = _("Signalements")

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import (
            alerts,  # noqa: F401  (listens to new reports)
            attachments,  # noqa: F401  (connects its signal receivers)
            lockout,  # noqa: F401  (prunes old counts of failed logins: a periodic job)
            metrics,  # noqa: F401  (counts the domain's events, queries and tasks)
            notifications,  # noqa: F401  (listens to the domain's events)
            overdue,  # noqa: F401  (the agents' daily digest: a periodic job)
            rollup,  # noqa: F401  (folds the rollup's changes in: a periodic job)
            routing,  # noqa: F401  (keeps its cached rules fresh: a signal receiver)
            service_levels,  # noqa: F401  (checks the holidays' settings)
            webhooks,  # noqa: F401  (listens to the domain's events: the outbox)
        )

        post_migrate.connect(install_triggers, sender=self)


def install_triggers(sender, using="default", plan=None, **kwargs):
    """The write-counting triggers, again after every migrate (`triggers.py`): a table
    that SQLite rebuilt to alter it lost its own."""
    from django.db import connections

    from . import triggers

    ours = [backwards for migration, backwards in plan or () if migration.app_label == sender.label]
    if plan is not None and (not ours or any(ours)):
        # Nothing of ours migrated (the tables are as they were), or migrated back (the
        # migrations' own reverse operations took away what goes).
        return
    connection = connections[using]
    if connection.vendor in ("sqlite", "postgresql"):
        triggers.install(connection)
