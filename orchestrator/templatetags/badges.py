"""``{% badge status label %}``: a status as a coloured badge, in every app's admin templates."""

from django import template
from django.utils.safestring import SafeString

from orchestrator.admin_helpers import badge_html

register = template.Library()


@register.simple_tag
def badge(value: str, label: str | None = None) -> SafeString:
    return badge_html(value, label)
