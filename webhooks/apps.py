from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from orchestrator.retention import retention_rule_register
        from webhooks import event_handlers, metrics, receivers  # noqa: F401
        from webhooks.retention import RULE

        retention_rule_register(RULE)
