"""The back office's template tags, loaded as `{% load signalements_admin %}` (named in
the TEMPLATES setting's "libraries": they live in the admin door, not in the domain app's
templatetags package)."""

from django import template

from . import dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def signalements_dashboard(context):
    """The dashboard's figures for the page's user (`dashboard.py`)."""
    return dashboard.figures(context["request"])
