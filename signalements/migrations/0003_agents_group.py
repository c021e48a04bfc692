from django.db import migrations

AGENTS_GROUP = "agents"


def create_agents_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name=AGENTS_GROUP)


class Migration(migrations.Migration):
    """The "agents" group that makes a user an agent (see signalements/permissions.py)."""

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("signalements", "0002_roles_history_comments"),
    ]

    operations = [migrations.RunPython(create_agents_group, migrations.RunPython.noop)]
