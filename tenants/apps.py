from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from orchestrator.bootstrap import bootstrap_step_register
        from orchestrator.retention import retention_rule_register
        from tenants import event_handlers, metrics, receivers, signals  # noqa: F401
        from tenants.bootstrap import ensure_codebuild_projects, ensure_tables
        from tenants.pipelines.registry import step_kind_register
        from tenants.services.pipeline_kinds import ApprovalStep, BuildStep, WaitStep
        from tenants.services.pipeline_provision import provision_listeners_register
        from tenants.services.retention import RULES

        for kind in (BuildStep(), ApprovalStep(), WaitStep()):
            step_kind_register(kind)
        provision_listeners_register()
        bootstrap_step_register(name="dynamodb tables", run=ensure_tables, order=10)
        bootstrap_step_register(name="codebuild projects", run=ensure_codebuild_projects, order=30)
        for rule in RULES:
            retention_rule_register(rule)
