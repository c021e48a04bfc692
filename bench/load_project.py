"""Loads the benchmark's reports into the project's database (`make bench`, bench/run.py).

    DATABASE_URL=postgres://... .venv/bin/python bench/load_project.py ROWS.json

ROWS.json is a list of [description, date] pairs (ISO 8601 dates with an offset), the
same rows that bench/load_seed.py loads into the seed's database. Each becomes one report
through the Django ORM, in bulk, with its history row as a create through the API would
leave; every other column keeps its default (public, status new, no category).
"""

import json
import os
import sys
from datetime import datetime
from pathlib import Path

BATCH_SIZE = 1000


def load(rows: list[list[str]]) -> int:
    """Inserts the reports; returns how many. Django must be set up."""
    from simple_history.utils import bulk_create_with_history

    from signalements.models import Signalement

    reports = [
        Signalement(description=description, date=datetime.fromisoformat(date))
        for description, date in rows
    ]
    for start in range(0, len(reports), BATCH_SIZE):
        bulk_create_with_history(reports[start : start + BATCH_SIZE], Signalement)
    return len(reports)


def main(path: str) -> None:
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signalements_project.settings")
    import django

    django.setup()
    from django.db import transaction

    with transaction.atomic():
        count = load(json.loads(Path(path).read_text(encoding="utf-8")))
    print(f"project: {count} reports loaded")


if __name__ == "__main__":
    main(sys.argv[1])
