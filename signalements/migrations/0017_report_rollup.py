"""The rollup of reports (`signalements/rollup.py`): its tables, the indexes the medians'
exact lookups read through, then its triggers and its first counting (`triggers.install`,
which also runs after every migrate)."""

from django.db import migrations, models

import signalements.models.rollup


def install_triggers(apps, schema_editor):
    from signalements import triggers

    triggers.install(schema_editor.connection)


def drop_rollup_triggers(apps, schema_editor):
    from signalements import triggers

    triggers.drop_rollup(schema_editor.connection)


def rollup_fields():
    return [
        (
            "id",
            models.BigAutoField(
                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
            ),
        ),
        ("kind", models.CharField(max_length=1)),
        ("created_month", models.IntegerField()),
        ("is_public", models.BooleanField()),
        ("status", models.CharField(max_length=20)),
        ("category_id", models.BigIntegerField()),
        ("department_id", models.BigIntegerField()),
        ("resolved_month", models.IntegerField()),
        ("bucket", models.IntegerField()),
        ("n", models.BigIntegerField()),
        ("due", models.BigIntegerField()),
        ("on_time", models.BigIntegerField()),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("signalements", "0016_scale_indexes_external_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportRollup",
            fields=rollup_fields(),
            options={"verbose_name": "report rollup row", "default_permissions": ()},
        ),
        migrations.CreateModel(
            name="ReportRollupDelta",
            fields=rollup_fields(),
            options={"verbose_name": "report rollup change", "default_permissions": ()},
        ),
        migrations.CreateModel(
            name="RollupMonth",
            fields=[
                ("starts_at", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("month", models.IntegerField()),
            ],
            options={"verbose_name": "rollup month", "default_permissions": ()},
        ),
        migrations.CreateModel(
            name="RollupState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("zone", models.CharField(max_length=64)),
            ],
            options={"verbose_name": "rollup state", "default_permissions": ()},
        ),
        migrations.AddConstraint(
            model_name="reportrollup",
            constraint=models.UniqueConstraint(
                fields=(
                    "kind",
                    "created_month",
                    "is_public",
                    "status",
                    "category_id",
                    "department_id",
                    "resolved_month",
                    "bucket",
                ),
                name="rollup_key_unique",
            ),
        ),
        migrations.AddIndex(
            model_name="signalement",
            index=models.Index(
                signalements.models.rollup.DurationMicroseconds("resolved_at", "created_at"),
                condition=models.Q(("resolved_at__isnull", False)),
                name="sig_resolution_time_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="signalement",
            index=models.Index(
                signalements.models.rollup.DurationMicroseconds("resolved_at", "due_at"),
                condition=models.Q(("resolved_at__gt", models.F("due_at"))),
                name="sig_lateness_idx",
            ),
        ),
        migrations.RunPython(install_triggers, drop_rollup_triggers),
    ]
