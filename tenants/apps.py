from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from orchestrator.retention import retention_rule_register
        from tenants import event_handlers, metrics, receivers, signals  # noqa: F401
        from tenants.services.retention import RULES

        for rule in RULES:
            retention_rule_register(rule)
