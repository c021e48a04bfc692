"""The data version (signalements/data_version.py): its counter rows, and the triggers
that bump it in every transaction writing to the tables that report representations are
made of."""

from django.db import migrations, models

SHARDS = 16
# The report (and the original it duplicates), its photos, its category's code, its
# assignee's username.
TABLES = (
    "signalements_signalement",
    "signalements_attachment",
    "signalements_category",
    "auth_user",
)
SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")
FUNCTION = "signalements_bump_data_version"


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    DataVersion = apps.get_model("signalements", "DataVersion")
    shards = SHARDS if vendor == "postgresql" else 1
    DataVersion.objects.bulk_create(DataVersion(shard=shard) for shard in range(shards))
    if vendor == "postgresql":
        # One statement, one bump; each connection keeps to its own row, so that
        # concurrent writers do not queue on one row (and never lock two: no deadlock).
        schema_editor.execute(
            f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE signalements_dataversion SET value = value + 1
                WHERE shard = pg_backend_pid() % {SHARDS};
                RETURN NULL;
            END $$""",
            params=None,  # no placeholders: `%` is the modulo operator
        )
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_data_version "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
    elif vendor == "sqlite":
        # Row triggers only; one writer at a time, so one counter row.
        for table in TABLES:
            for event in SQLITE_EVENTS:
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_data_version_{event.lower()} AFTER {event} "
                    f"ON {table} BEGIN "
                    "UPDATE signalements_dataversion SET value = value + 1 WHERE shard = 0; END"
                )
    else:
        raise NotImplementedError(f"The data version has no triggers for {vendor}.")


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    else:
        for table in TABLES:
            for event in SQLITE_EVENTS:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_data_version_{event.lower()}")


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("signalements", "0008_agents_photo_permissions"),
    ]

    operations = [
        migrations.CreateModel(
            name="DataVersion",
            fields=[
                ("shard", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "data version shard",
                "default_permissions": (),
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
