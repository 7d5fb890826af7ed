from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        # The catalogue defines each detail-type's schema; handlers come from each app's event_handlers.
        from events import catalogue, checks, metrics  # noqa: F401
        from events.retention import RULES
        from orchestrator.retention import retention_rule_register

        for rule in RULES:
            retention_rule_register(rule)
