from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from orchestrator.bootstrap import bootstrap_step_register
        from orchestrator.retention import retention_rule_register
        from tenants import event_handlers, metrics, receivers, signals  # noqa: F401
        from tenants.bootstrap import ensure_codebuild_projects, ensure_tables
        from tenants.services.retention import RULES

        bootstrap_step_register(name="dynamodb tables", run=ensure_tables, order=10)
        bootstrap_step_register(name="codebuild projects", run=ensure_codebuild_projects, order=30)
        for rule in RULES:
            retention_rule_register(rule)
