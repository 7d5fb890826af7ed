from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    """The project itself as an app, so it can own shared management commands (``bootstrap_aws``)."""

    name = "orchestrator"
    verbose_name = "Orchestrator"
