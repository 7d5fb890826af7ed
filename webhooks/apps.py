from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from orchestrator.retention import retention_rule_register
        from tenants.pipelines.registry import step_kind_register
        from webhooks import event_handlers, metrics, receivers  # noqa: F401
        from webhooks.retention import RULE
        from webhooks.services.pipeline_steps import pipeline_step_kinds

        retention_rule_register(RULE)
        for kind in pipeline_step_kinds():  # the upper layer plugs its kinds into the tenants' registry
            step_kind_register(kind)
