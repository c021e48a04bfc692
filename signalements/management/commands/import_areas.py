"""Import areas (districts, neighbourhoods…) from a GeoJSON file.

    manage.py import_areas FILE.geojson --kind district [--code-property code]
        [--name-property name] [--deactivate-missing] [--reassign] [--dry-run]

Each feature of the FeatureCollection (or the single Feature) becomes an area of that
kind, found again by its code: created, updated (name, geometry, made active again), or
left unchanged, so running the command twice changes nothing the second time. A feature
that cannot be imported (a geometry that is not a valid Polygon or MultiPolygon in
WGS84 longitude/latitude, no code nor name, a code used twice…) is reported with its
index in the file and the reason, and left out; the others are imported, and the
command then exits with status 1, so that a script notices. `--dry-run` checks a file
without importing it. The whole file is one transaction: an error midway imports nothing.

`--reassign` recomputes the areas of the reports that lie in the created, updated and
deactivated areas (without routing them again: their department and priority stay).
See `signalements/areas.py`.
"""

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.validators import slug_re
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from signalements import areas


def kind_slug(value: str) -> str:
    if not slug_re.match(value) or len(value) > 40:
        raise argparse.ArgumentTypeError(
            f"a kind is at most 40 letters, digits, - and _, not {value!r}"
        )
    return value


class Command(BaseCommand):
    help = (
        "Create or update areas of one kind from a GeoJSON FeatureCollection (or Feature), "
        "by code; idempotent. Bad features are listed with their index and reason and "
        "left out, the others imported, and the exit status is then 1. The file is "
        "imported in one transaction. --reassign recomputes the areas of the reports in "
        "the changed areas (their department and priority are not routed again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A GeoJSON file (UTF-8), longitude/latitude in WGS84.")
        parser.add_argument(
            "--kind",
            required=True,
            type=kind_slug,
            help="The kind of the areas: district, neighbourhood… (a slug).",
        )
        parser.add_argument(
            "--code-property",
            default="code",
            help="The feature property holding the area's code (default: code). A feature "
            "without it gets its name, slugified.",
        )
        parser.add_argument(
            "--name-property",
            default="name",
            help="The feature property holding the area's name (default: name; without "
            "it, the code).",
        )
        parser.add_argument(
            "--deactivate-missing",
            action="store_true",
            help="Make inactive the areas of this kind that the file does not name (not "
            "done when a feature is bad).",
        )
        parser.add_argument(
            "--reassign",
            action="store_true",
            help="Recompute the areas of the reports located in the created, updated or "
            "deactivated areas. Reports are not routed again (department, priority).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would change; change nothing.",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except OSError as error:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s")
                % {"file": path, "error": error.strerror or error}
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(
                _("%(file)s is not JSON (UTF-8): %(error)s") % {"file": path, "error": error}
            ) from None
        try:
            features = areas.features_of(data)
        except areas.NotGeoJSON as error:
            raise CommandError(f"{path}: {error}") from None

        dry_run = options["dry_run"]
        with transaction.atomic():
            result = areas.import_features(
                features,
                kind=options["kind"],
                code_property=options["code_property"],
                name_property=options["name_property"],
                deactivate_missing=options["deactivate_missing"],
                reason=f"import_areas {path.name}",
            )
            reassigned = (
                areas.reassign(result.changed) if options["reassign"] and result.changed else None
            )
            if dry_run:
                transaction.set_rollback(True)

        for problem in result.problems:
            self.stderr.write(
                _("Feature %(index)d left out: %(reason)s")
                % {"index": problem.index, "reason": problem.reason}
            )
        if result.deactivation_skipped:
            self.stderr.write(
                _("No area deactivated: some features were left out, and may be among them.")
            )
        summary = _(
            "%(kind)s: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
            "%(deactivated)d deactivated, %(bad)d left out."
        ) % {
            "kind": options["kind"],
            "created": len(result.created),
            "updated": len(result.updated),
            "unchanged": len(result.unchanged),
            "deactivated": len(result.deactivated),
            "bad": len(result.problems),
        }
        if dry_run:
            summary = _("Dry run, nothing saved. %(summary)s") % {"summary": summary}
        self.stdout.write(summary)
        if reassigned is not None:
            self.stdout.write(
                ngettext(
                    "%(count)d report changed areas.",
                    "%(count)d reports changed areas.",
                    reassigned,
                )
                % {"count": reassigned}
            )
        if result.problems:
            raise CommandError(
                ngettext(
                    "%(count)d feature left out.",
                    "%(count)d features left out.",
                    len(result.problems),
                )
                % {"count": len(result.problems)},
                returncode=1,
            )
