"""The transition table, applied by the one service function."""

import pytest

from signalements import services
from signalements.models import TRANSITIONS, Status

from .factories import SignalementFactory

pytestmark = pytest.mark.django_db

ALL_PAIRS = [(a, b) for a in Status for b in Status]


@pytest.mark.parametrize("from_status, to_status", ALL_PAIRS)
def test_every_transition_is_allowed_or_refused_as_the_table_says(from_status, to_status):
    report = SignalementFactory(status=from_status)

    if to_status in TRANSITIONS[from_status]:
        moved = services.transition(signalement=report, to_status=to_status)
        assert moved.status == to_status
        assert (moved.resolved_at is not None) == (to_status == Status.RESOLVED)
    else:
        with pytest.raises(services.TransitionNotAllowed) as refused:
            services.transition(signalement=report, to_status=to_status)
        assert refused.value.allowed == sorted(TRANSITIONS[from_status])
        report.refresh_from_db()
        assert report.status == from_status


def test_reopening_clears_resolved_at():
    report = SignalementFactory(status="acknowledged")
    report = services.transition(signalement=report, to_status=Status.RESOLVED)

    report = services.transition(signalement=report, to_status=Status.IN_PROGRESS)

    assert report.resolved_at is None


def test_the_table_matches_the_product_brief():
    assert TRANSITIONS == {
        "new": {"acknowledged", "rejected"},
        "acknowledged": {"in_progress", "resolved", "rejected"},
        "in_progress": {"resolved", "acknowledged"},
        "resolved": {"in_progress"},
        "rejected": {"acknowledged"},
    }


def test_a_reports_history_manager_class_is_built_once():
    """simple-history's descriptor builds the manager class at each access; the report's
    manager keeps the one it built (models/reports.py, ReportHistoryManager)."""
    first, second = SignalementFactory(), SignalementFactory()
    assert type(first.history) is type(second.history)
    assert first.history.count() == second.history.count() == 1
