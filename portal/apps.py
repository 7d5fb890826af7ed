from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The staff portal: the pages that span apps (dashboard, tenant page and timeline, cross-app actions)."""

    name = "portal"
    verbose_name = "Staff portal"
