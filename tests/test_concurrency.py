"""Two simultaneous transitions of one report serialize (PostgreSQL row lock); so do
simultaneous photo uploads, which must not together exceed the limit.

`services.transition` locks the report's row with SELECT ... FOR UPDATE, so a second
transition started while a first one is uncommitted waits for it, then checks the
workflow against the committed result: it cannot overwrite it with a move that was
legal only from the old state (a lost update).

The threads use their own database connections and only see committed data, hence
`transaction=True`. SQLite has no row locks (it serializes whole writers), so these
tests only run on PostgreSQL: `scripts/with-postgres.sh .venv/bin/pytest`.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from signalements import services
from signalements.models import TRANSITIONS, Signalement, Status

from .contact_addresses import confirmed
from .factories import SignalementFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=f"row locking (SELECT ... FOR UPDATE) needs PostgreSQL, not {connection.vendor}",
    ),
    pytest.mark.django_db(transaction=True),
]

# Upper bound for anything that waits on another thread, so a bug hangs no test run.
TIMEOUT = 30


def in_own_connection(func):
    """Run `func` in a worker thread with its own connection, closed at the end."""

    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    return run


def wait_until_blocked_on_a_lock(pid: int, timeout: float = 10) -> bool:
    """Whether the backend `pid` waits on a lock (seen in pg_stat_activity) in time."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row is not None and row[0] == "Lock":
                return True
            time.sleep(0.01)
    return False


@pytest.mark.parametrize(
    "from_status, first, second",
    [
        # The same move twice: acknowledged -> acknowledged is not a transition.
        (Status.NEW, Status.ACKNOWLEDGED, Status.ACKNOWLEDGED),
        # Two different moves: without the lock the rejection would overwrite the
        # resolution (a lost update), although resolved -> rejected is not allowed.
        (Status.ACKNOWLEDGED, Status.RESOLVED, Status.REJECTED),
        (Status.IN_PROGRESS, Status.RESOLVED, Status.ACKNOWLEDGED),
    ],
)
def test_a_transition_waits_for_a_concurrent_one_then_sees_its_result(
    from_status, first, second, mailoutbox
):
    # Both moves are legal from the starting state, the second one no longer after the first.
    assert {first, second} <= TRANSITIONS[from_status]
    assert second not in TRANSITIONS[first]
    report = confirmed(SignalementFactory(status=from_status))  # its address gets updates
    a_holds_the_lock = threading.Event()
    b_pid = []
    times = {}

    @in_own_connection
    def thread_a():
        with transaction.atomic():
            moved = services.transition(signalement=report, to_status=first)
            # The row stays locked until this outer transaction commits.
            a_holds_the_lock.set()
            b_blocked = wait_until_blocked_on_a_lock(b_pid[0]) if b_pid else False
            times["a_commits"] = time.monotonic()
        times["a_committed"] = time.monotonic()
        return moved, b_blocked

    @in_own_connection
    def thread_b():
        # Like a second request that loaded the report before the first one committed.
        stale = Signalement.objects.get(pk=report.pk)
        assert stale.status == from_status
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            b_pid.append(cursor.fetchone()[0])
        assert a_holds_the_lock.wait(TIMEOUT)
        times["b_calls"] = time.monotonic()
        try:
            return services.transition(signalement=stale, to_status=second)
        finally:
            times["b_returned"] = time.monotonic()

    with ThreadPoolExecutor(max_workers=2) as pool:
        b = pool.submit(thread_b)
        # B has its connection (and its pid) before A starts.
        deadline = time.monotonic() + TIMEOUT
        while not b_pid and time.monotonic() < deadline and not b.done():
            time.sleep(0.005)
        a = pool.submit(thread_a)
        moved, b_blocked = a.result(timeout=TIMEOUT)
        with pytest.raises(services.TransitionNotAllowed) as refused:
            b.result(timeout=TIMEOUT)

    assert moved.status == first
    # B asked while A held the lock, waited on it, and got its answer only once A committed.
    assert b_blocked, "B never waited for the row lock held by A"
    assert times["b_calls"] < times["a_commits"] < times["b_returned"]
    # ... and B judged its move against A's committed state, not the one it had loaded.
    assert refused.value.signalement.status == first
    assert refused.value.allowed == sorted(TRANSITIONS[first])
    report.refresh_from_db()
    assert report.status == first
    assert (report.resolved_at is not None) == (first == Status.RESOLVED)
    assert [h.status for h in report.history.order_by("history_id")] == [from_status, first]
    assert len(mailoutbox) == 1


def test_of_many_simultaneous_identical_transitions_exactly_one_succeeds(mailoutbox):
    threads = 8
    report = confirmed(SignalementFactory(status=Status.NEW))  # its address gets updates
    start = threading.Barrier(threads, timeout=TIMEOUT)

    @in_own_connection
    def acknowledge():
        stale = Signalement.objects.get(pk=report.pk)  # Opens the connection before the race.
        start.wait()
        try:
            return services.transition(signalement=stale, to_status=Status.ACKNOWLEDGED)
        except services.TransitionNotAllowed as refused:
            return refused

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(acknowledge) for _ in range(threads)]
        results = [future.result(timeout=TIMEOUT) for future in futures]

    moved = [r for r in results if isinstance(r, Signalement)]
    refused = [r for r in results if isinstance(r, services.TransitionNotAllowed)]
    assert len(moved) == 1, f"{len(moved)} of {threads} threads acknowledged the report"
    assert len(refused) == threads - 1
    assert all(r.signalement.status == Status.ACKNOWLEDGED for r in refused)
    report.refresh_from_db()
    assert report.status == Status.ACKNOWLEDGED
    # One status change recorded, one reporter email: no update was applied twice.
    assert report.history.filter(status=Status.ACKNOWLEDGED).count() == 1
    assert report.history.count() == 2
    assert len(mailoutbox) == 1


def test_simultaneous_uploads_cannot_exceed_the_photo_limit(settings, tmp_path):
    """Each upload counts the report's photos under the row lock: of 6 simultaneous
    uploads of one photo to a report with room for 2, exactly 2 are stored, and the
    files of the refused ones are deleted."""
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile

    from signalements import attachments, photos

    from . import images

    settings.SIGNALEMENT_MAX_ATTACHMENTS = 2
    threads = 6
    report = SignalementFactory()
    photo = photos.process(SimpleUploadedFile("a.jpg", images.jpeg_with_gps()))
    start = threading.Barrier(threads, timeout=TIMEOUT)

    @in_own_connection
    def add_one():
        Signalement.objects.get(pk=report.pk)  # Opens the connection before the race.
        start.wait()
        try:
            return attachments.add(signalement=report, photos=[photo])
        except attachments.TooManyPhotos as refused:
            return refused

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [
            f.result(timeout=TIMEOUT) for f in [pool.submit(add_one) for _ in range(threads)]
        ]

    added = [r for r in results if isinstance(r, list)]
    assert len(added) == 2, f"{len(added)} of {threads} uploads were stored"
    assert report.attachments.count() == 2
    folder = os.path.dirname(report.attachments.first().file.name)  # photos/<year>/<month>
    _, stored = default_storage.listdir(folder)
    assert len(stored) == 2  # the refused uploads' files were deleted
