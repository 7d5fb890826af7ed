import time

from django.core.management.base import BaseCommand, CommandParser

from events.emulator import emulator_relay_poll
from events.wiring import relay_enabled


class Command(BaseCommand):
    help = "Local only: carry events from the emulator's relay queue to the intake over HTTP (see events.wiring)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain the queue once and exit.")

    def handle(self, *args: object, **options: object) -> None:
        if not relay_enabled():
            self.stderr.write("The relay is off: no AWS emulator endpoint, or EVENT_EMULATOR_RELAY=false.")
            return
        while True:
            delivered = emulator_relay_poll(wait_seconds=0 if options["once"] else 5)
            if delivered:
                self.stdout.write(f"relayed {delivered} event(s)")
            if options["once"]:
                return
            if not delivered:
                time.sleep(0.5)
