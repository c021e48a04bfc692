"""Background work with the real worker (`manage.py worker`, a process of its own) on the
database queue, on SQLite and on PostgreSQL: a failing task is tried again after its
delays, then given up, and each attempt is a task result that admins see; a task whose
worker is killed (kill -9) in the middle is run again by another worker; tasks are
enqueued on commit only."""

import subprocess
import sys

import pytest
from django.db import transaction
from django.test import override_settings

from signalements.tasks import enqueue_on_commit

from . import worker_tasks
from .live import DATABASES, ROOT, Worker, live_database, server_environment, sql, wait_for

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.mark.django_db(transaction=True)
def test_a_task_is_enqueued_when_its_transaction_commits_and_never_after_a_rollback(tmp_path):
    from django_tasks_db.models import DBTaskResult

    with override_settings(TASKS=DATABASE_QUEUE):
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_on_commit(worker_tasks.flaky, str(tmp_path / "a"), 0)
            assert DBTaskResult.objects.count() == 0  # not before the commit
            raise RuntimeError("the change fails")
        assert DBTaskResult.objects.count() == 0
        with transaction.atomic():
            enqueue_on_commit(worker_tasks.flaky, str(tmp_path / "b"), 0)
        assert DBTaskResult.objects.count() == 1


def enqueue(database_url: str, statement: str) -> None:
    """Run `statement` (Python) against the live database, with the database queue."""
    code = f"import django; django.setup(); from tests import worker_tasks; {statement}"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=server_environment(database_url, TASKS_BACKEND="database"),
        check=True,
        timeout=60,
    )


def results(database_url: str) -> list[tuple[str, str]]:
    """(status, exception class) of every task result, oldest first."""
    return [
        (status, exception.rsplit(".", 1)[-1])
        for status, exception in sql(
            database_url,
            "SELECT status, exception_class_path FROM django_tasks_database_dbtaskresult "
            "ORDER BY enqueued_at",
        )
    ]


@pytest.mark.parametrize("kind", DATABASES)
def test_a_failing_task_is_retried_after_its_delays_then_given_up(kind, tmp_path):
    with live_database(kind, tmp_path) as url:
        recovered, given_up = tmp_path / "recovered", tmp_path / "given-up"
        enqueue(url, f"worker_tasks.flaky.enqueue({str(recovered)!r}, 2)")
        enqueue(url, f"worker_tasks.flaky.enqueue({str(given_up)!r}, 10)")
        worker = Worker(url)
        try:
            wait_for(lambda: recovered.exists() and "succeeded" in recovered.read_text())
            wait_for(lambda: given_up.exists() and given_up.read_text().count("failed") == 3)
            wait_for(lambda: len(results(url)) == 6 and ("READY",) not in results(url))
        finally:
            worker.stop()
        assert recovered.read_text().splitlines() == ["failed 1", "failed 2", "succeeded 3"]
        # Three attempts (a first one and one per delay), then no more.
        assert given_up.read_text().splitlines() == ["failed 1", "failed 2", "failed 3"]
        found = results(url)
        assert sorted(found) == sorted(
            [
                ("FAILED", "WillRetry"),
                ("FAILED", "WillRetry"),
                ("SUCCESSFUL", ""),
                ("FAILED", "WillRetry"),
                ("FAILED", "WillRetry"),
                ("FAILED", "GaveUp"),
            ]
        )


@pytest.mark.parametrize("kind", DATABASES)
def test_a_task_whose_worker_is_killed_is_run_again_by_another(kind, tmp_path):
    with live_database(kind, tmp_path) as url:
        trace = tmp_path / "trace"
        enqueue(url, f"worker_tasks.slow_once.enqueue({str(trace)!r})")
        first = Worker(url, TASKS_ABANDONED_AFTER_SECONDS="2")
        try:
            wait_for(lambda: trace.exists() and "started 1" in trace.read_text())
        finally:
            first.kill()  # mid-task
        assert results(url) == [("RUNNING", "")]
        second = Worker(url, TASKS_ABANDONED_AFTER_SECONDS="2")
        try:
            wait_for(lambda: "done" in trace.read_text())
            wait_for(lambda: results(url) == [("SUCCESSFUL", "")])
        finally:
            second.stop()
        assert trace.read_text().splitlines() == ["started 1", "started 2", "done"]


@pytest.mark.django_db
def test_finished_task_results_are_pruned_after_their_keep_days(tmp_path, settings):
    from django.utils import timezone
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from signalements.tasks import prune_task_results

    settings.TASKS = DATABASE_QUEUE
    settings.TASKS_BACKEND = "database"
    settings.TASKS_KEEP_DAYS, settings.TASKS_KEEP_FAILED_DAYS = 7, 30
    ages = {"SUCCESSFUL": [3, 8], "FAILED": [8, 31], "READY": [40]}
    for status, days in ages.items():
        for age in days:
            result = worker_tasks.flaky.enqueue(str(tmp_path / f"{status}{age}"), 0)
            finished = timezone.now() - timezone.timedelta(days=age)
            DBTaskResult.objects.filter(pk=result.id).update(
                status=getattr(TaskResultStatus, status),
                finished_at=finished if status != "READY" else None,
                enqueued_at=finished,
            )

    prune_task_results()

    kept = sorted(DBTaskResult.objects.values_list("status", flat=True))
    # The successful one of 3 days, the failed one of 8 days, the one still to run.
    assert kept == ["FAILED", "READY", "SUCCESSFUL"]
