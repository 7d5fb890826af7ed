from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        # The catalogue registers each detail-type's schema; handlers come from each app's ready().
        from events import catalogue  # noqa: F401
