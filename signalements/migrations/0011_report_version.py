"""A report's version (`Signalement.version`): one more at every write of the report or
of its photos, by database triggers, whoever writes (the API, the admin, `.update()`,
raw SQL). The REST API builds the detail's ETag from it and checks `If-Match` with it."""

from django.db import migrations, models

REPORT = "signalements_signalement"
PHOTO = "signalements_attachment"
FUNCTION = "signalements_bump_report_version"


def install(apps, schema_editor):
    # Adding the column rebuilt the table on SQLite, without its triggers: all of them
    # are made again here (and after every migrate: see signalements/triggers.py).
    from signalements import triggers

    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {REPORT}_version ON {REPORT}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {PHOTO}_report_version ON {PHOTO}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}_of_photo()")
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {REPORT}_version")
        for event in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {PHOTO}_report_version_{event}")


class Migration(migrations.Migration):
    dependencies = [
        ("signalements", "0010_idempotency_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="signalement",
            name="version",
            field=models.PositiveBigIntegerField(
                default=1, editable=False, verbose_name="version"
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
