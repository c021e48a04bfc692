"""Template tags of the back office."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def signalements_dashboard(context):
    """The dashboard's figures for the page's user (`signalements/admin/dashboard.py`)."""
    from signalements.admin import dashboard

    return dashboard.figures(context["request"])
