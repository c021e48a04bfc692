"""Background work: Django's tasks API (the `django-tasks` backport; the database
backend of `django-tasks-db` in production, so that SQLite needs no other service and
PostgreSQL workers take tasks with SKIP LOCKED), and what it lacks:

- `enqueue_on_commit()`: a task is enqueued once the transaction that caused it commits
  (nothing for a write that rolled back; Django's `on_commit`).
- `retried_task()`: a task that fails is tried again later, after each of its delays
  (exponential backoff), then given up. Each failed attempt is a failed task result
  whose error says what comes next (`WillRetry`, with the next time) or that it was the
  last (`GaveUp`): admins list them in the admin, under "Task results" (status Failed).
- `periodic()`: jobs that `manage.py worker` runs every so often beside the tasks
  (recovering tasks whose worker died, daily digests…).

Tasks take ids, not objects or addresses: what they need is read when they run, so the
queue holds no personal data and a task run late sends what is true then. A task may run
more than once (a worker killed mid-task: see `recover_abandoned`): tasks are written so
that running twice does no harm, or as little as possible (an email sent twice).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskContext, task

logger = logging.getLogger(__name__)


class WillRetry(Exception):
    """An attempt failed; the task runs again at the time given."""


class GaveUp(Exception):
    """The last attempt failed: the task is not tried again."""


def enqueue_on_commit(task_, *args, **kwargs) -> None:
    """Enqueue `task_` with these arguments once the current transaction commits (at
    once outside a transaction)."""
    transaction.on_commit(lambda: task_.enqueue(*args, **kwargs))


def retried_task(*, delays: tuple[timedelta, ...], queue_name: str = "default", priority: int = 0):
    """A task that is run again after each of `delays` when it raises, then given up.

    The function is called with its own arguments; the attempt's number travels as the
    task's keyword argument `attempt` (1 for the first)."""

    def decorate(function: Callable):
        def run(context: TaskContext, *args, attempt: int = 1, **kwargs):
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if (
                    attempt > len(delays)
                    or not context.task_result.task.get_backend().supports_defer
                ):
                    raise GaveUp(
                        f"attempt {attempt} of {len(delays) + 1} failed, given up: {error!r}"
                    ) from error
                when = timezone.now() + delays[attempt - 1]
                wrapper.using(run_after=when).enqueue(*args, attempt=attempt + 1, **kwargs)
                raise WillRetry(
                    f"attempt {attempt} of {len(delays) + 1} failed: {error!r}; "
                    f"next at {when.isoformat()}"
                ) from error

        # The task is found again by the function's name in its module (the worker imports
        # it from there); not functools.wraps, whose __wrapped__ would hide `context`.
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(run, attribute, getattr(function, attribute))
        wrapper = task(run, takes_context=True, queue_name=queue_name, priority=priority)
        return wrapper

    return decorate


# Periodic jobs of `manage.py worker`.


@dataclass
class Periodic:
    function: Callable[[], object]
    every: timedelta
    name: str


PERIODIC: list[Periodic] = []


def periodic(*, every: timedelta):
    """Run the decorated function (no arguments) every `every` in `manage.py worker`."""

    def decorate(function):
        PERIODIC.append(Periodic(function, every, f"{function.__module__}.{function.__name__}"))
        return function

    return decorate


@periodic(every=timedelta(seconds=5))
def recover_abandoned() -> int:
    """Tasks that a worker started and never finished (the worker was killed, or its
    machine lost) go back to the queue once they have run for longer than
    TASKS_ABANDONED_AFTER_SECONDS; another worker then runs them. Returns how many."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    limit = timezone.now() - timedelta(seconds=settings.TASKS_ABANDONED_AFTER_SECONDS)
    abandoned = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=limit)
    count = abandoned.update(status=TaskResultStatus.READY, started_at=None)
    if count:
        logger.warning("%d abandoned task(s) put back in the queue", count)
    return count


@periodic(every=timedelta(hours=1))
def prune_task_results() -> None:
    """The queue's finished results do not pile up: successful ones go after
    TASKS_KEEP_DAYS, failed ones (what admins look into) after TASKS_KEEP_FAILED_DAYS
    (django-tasks-db's own `prune_db_task_results`)."""
    from django.core.management import call_command

    if settings.TASKS_BACKEND != "database":
        return
    call_command(
        "prune_db_task_results",
        min_age_days=settings.TASKS_KEEP_DAYS,
        failed_min_age_days=settings.TASKS_KEEP_FAILED_DAYS,
        queue_name="*",
        verbosity=0,
    )
