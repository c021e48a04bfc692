from django.contrib.auth.management import create_permissions
from django.db import migrations

AGENTS_GROUP = "agents"
# What an agent needs in the admin: triage reports, write notes, read categories.
AGENT_PERMISSIONS = [
    "view_signalement",
    "change_signalement",
    "view_historicalsignalement",
    "view_comment",
    "add_comment",
    "view_category",
]


def grant_agent_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create this
    # app's now so that the group can get them on a fresh database.
    app_config = apps.get_app_config("signalements")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="signalements", codename__in=AGENT_PERMISSIONS
        )
    )


class Migration(migrations.Migration):
    """Agents (group "agents") can work in the admin out of the box."""

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("signalements", "0003_agents_group"),
    ]

    operations = [migrations.RunPython(grant_agent_permissions, migrations.RunPython.noop)]
