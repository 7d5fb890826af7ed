from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        # The catalogue defines each detail-type's schema; handlers come from each app's event_handlers.
        from events import catalogue, checks, metrics  # noqa: F401
        from events.retention import RULES
        from events.wiring import ensure_event_bus, ensure_intake_wiring
        from orchestrator.bootstrap import bootstrap_step_register
        from orchestrator.retention import retention_rule_register

        bootstrap_step_register(name="event bus", run=ensure_event_bus, order=20)
        bootstrap_step_register(name="eventbridge -> intake wiring", run=ensure_intake_wiring, order=40)
        for rule in RULES:
            retention_rule_register(rule)
