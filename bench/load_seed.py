"""Loads the benchmark's reports into the seed's database (`make bench`, bench/run.py).

    SEED_DATABASE_URL=postgresql+psycopg://... .venv-bench/bin/python bench/load_seed.py ROWS.json

Runs with the seed's virtualenv; imports the seed's `app` package from bench/seed. The
same rows as bench/load_project.py, through the seed's own SQLAlchemy model, in bulk.
The seed's `date` column has no time zone: dates are stored in UTC.
"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

SEED = Path(__file__).resolve().parent / "seed"


def main(path: str) -> None:
    sys.path.insert(0, str(SEED))
    from app.core.config import SessionLocal
    from app.core.init_db import init_db
    from app.models.signalement import Signalement
    from sqlalchemy import insert

    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    init_db()
    values = [
        {
            "description": description,
            "date": datetime.fromisoformat(date).astimezone(UTC).replace(tzinfo=None),
        }
        for description, date in rows
    ]
    with SessionLocal() as session:
        session.execute(insert(Signalement), values)
        session.commit()
    print(f"seed: {len(values)} reports loaded")


if __name__ == "__main__":
    main(sys.argv[1])
