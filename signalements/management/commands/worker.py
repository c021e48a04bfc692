"""`manage.py worker`: runs the tasks of the database queue (django-tasks-db's
`db_worker`, with all its options) and, in a thread beside it, the periodic jobs of
`signalements.tasks` (recovering tasks whose worker died, daily digests…). Start one or
more per machine (`make worker`); they share the queue through the database, and each
runs the periodic jobs (they are written to be run by several at once)."""

import logging
import threading
import time

from django.db import close_old_connections, connection
from django_tasks_db.management.commands import db_worker

from signalements import tasks

logger = logging.getLogger(__name__)


def run_periodic_jobs(stop: threading.Event, tick: float = 1.0) -> None:
    """Run each periodic job when it is due, until `stop` is set."""
    due = {job.name: 0.0 for job in tasks.PERIODIC}
    while not stop.is_set():
        now = time.monotonic()
        for job in tasks.PERIODIC:
            if now < due[job.name]:
                continue
            due[job.name] = now + job.every.total_seconds()
            try:
                close_old_connections()
                job.function()
            except Exception:
                logger.exception("Periodic job %s failed", job.name)
        stop.wait(tick)
    connection.close()


class Command(db_worker.Command):
    help = "Run background tasks (the database queue) and the periodic jobs."

    def handle(self, *args, **options):
        stop = threading.Event()
        periodic = threading.Thread(
            target=run_periodic_jobs, args=(stop,), name="periodic-jobs", daemon=True
        )
        periodic.start()
        try:
            return super().handle(*args, **options)
        finally:
            stop.set()
            periodic.join(timeout=10)
