"""Counting what a block of code did to the outside world: database writes, Celery messages, AWS requests.

For tests of code that must only read (the dry run): the counts must stay at zero, and the same recorder
around the real path shows it counts (so a zero is not a recorder that sees nothing).

- database: every statement on the default connection (``CaptureQueriesContext``) that writes or locks
  (INSERT, UPDATE, DELETE, SELECT ... FOR UPDATE), and every callback queued for after commit;
- Celery: every ``apply_async`` / ``send_task`` (spied, the call goes through: eager in tests);
- AWS: every request a boto3 client of the app sends (a ``before-send`` hook on each, as moto_server gets it).
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from celery import Celery
from celery.app.task import Task
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestrator.aws import aws_client

# Every AWS service the app calls (``grep -o 'aws_client("[a-z]*"'``).
AWS_SERVICES = ("codebuild", "dynamodb", "events", "secretsmanager", "sqs", "ssm")
WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")


@dataclass
class SideEffects:
    writes: list[str] = field(default_factory=list)
    on_commit: int = 0
    tasks: list[str] = field(default_factory=list)
    aws: list[str] = field(default_factory=list)

    def none(self) -> bool:
        return not (self.writes or self.on_commit or self.tasks or self.aws)


def _is_write(sql: str) -> bool:
    text = sql.lstrip().upper()
    return text.startswith(WRITE_PREFIXES) or " FOR UPDATE" in text


@contextmanager
def side_effects_counted() -> Iterator[SideEffects]:
    effects = SideEffects()
    original_apply_async, original_send_task = Task.apply_async, Celery.send_task

    def apply_async(task: Task, *args: Any, **kwargs: Any) -> Any:
        effects.tasks.append(task.name)
        return original_apply_async(task, *args, **kwargs)

    def send_task(app: Celery, name: str, *args: Any, **kwargs: Any) -> Any:
        effects.tasks.append(name)
        return original_send_task(app, name, *args, **kwargs)

    def aws_request(request: Any, **kwargs: Any) -> None:
        effects.aws.append(request.url)

    clients = [aws_client(service) for service in AWS_SERVICES]
    pending_before = len(connection.run_on_commit)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Task, "apply_async", apply_async))
        stack.enter_context(mock.patch.object(Celery, "send_task", send_task))
        for client in clients:
            client.meta.events.register("before-send", aws_request)
            stack.callback(client.meta.events.unregister, "before-send", aws_request)
        queries = stack.enter_context(CaptureQueriesContext(connection))
        yield effects
        effects.on_commit = len(connection.run_on_commit) - pending_before
    effects.writes = [query["sql"] for query in queries.captured_queries if _is_write(query["sql"])]
