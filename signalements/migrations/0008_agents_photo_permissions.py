from django.contrib.auth.management import create_permissions
from django.db import migrations

AGENTS_GROUP = "agents"
# Photos in the admin: agents see them inline, add them (the report's form) and delete
# them, as through the API.
AGENT_PERMISSIONS = ["view_attachment", "add_attachment", "delete_attachment"]


def grant_agent_permissions(apps, schema_editor):
    # As in 0004: this app's permissions exist only after post_migrate on a new database.
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


def revoke_agent_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=AGENTS_GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="signalements", codename__in=AGENT_PERMISSIONS
            )
        )


class Migration(migrations.Migration):
    """Agents (group "agents") see, add and delete photos in the admin."""

    dependencies = [("signalements", "0007_apikey_media_url")]

    operations = [migrations.RunPython(grant_agent_permissions, revoke_agent_permissions)]
