"""The pipeline step kinds the webhooks app plugs into the tenants app's registry (``WebhooksConfig.ready``).

- ``callback``: ``{"callback": "<name>"}``, one of the original's callbacks (app-plane bootstrap,
  feature-service bootstrap, control-plane webhook), planned from the outputs of the steps before it exactly
  as the deployment chain plans it from the build's outcome (same URL, payload and signature); or
  ``{"url": "https://...", "signing": "original"}``: the control-plane webhook's payload, signed the same
  way (HMAC of the build outputs' ``secret``, with ``context``), sent to that URL (checked by the SSRF guard
  when saved and again when sent). One delivery per step run (dedupe key ``pipeline-step:{key}``): a
  retried or redriven step sends it again with the same ``webhook-id``. The step ends with its delivery
  (``step_delivery_finished``, called by the attempt engine).
- ``notify``: ``{"event_type": "tenant.deployed"}``, a Standard Webhooks subscriber event to every endpoint
  subscribed to it (dedupe keys ``pipeline-notify:{key}:endpoint:{pk}``); the step does not wait for them.
"""

from typing import Any

from django.utils import timezone

from orchestrator.http import OutboundError, OutboundRefused, url_check
from orchestrator.redaction import redact
from tenants.models import StepRun, Tier
from tenants.pipelines.registry import StepContext, StepDone, StepFailed, StepKind, StepStart, StepWaits
from tenants.services.pipeline_runs import step_run_complete
from webhooks.delivery import payload_bytes
from webhooks.models import (
    DONE_STATUSES,
    DeliveryStatus,
    DeliveryStep,
    SigningScheme,
    WebhookDelivery,
    WebhookEventType,
)
from webhooks.services.chain import PlannedCallback, callback_plan, tenant_document_of
from webhooks.services.dispatch import delivery_enqueue
from webhooks.services.history import delivery_history_record
from webhooks.services.notify import subscriber_data, subscribers_notify

CALLBACK_NAMES = (
    DeliveryStep.APP_PLANE_BOOTSTRAP,
    DeliveryStep.FEATURE_SERVICE_BOOTSTRAP,
    DeliveryStep.CONTROL_PLANE_WEBHOOK,
)
CALLBACK_KEY_PREFIX = "pipeline-step:"
URL_SIGNING = (SigningScheme.ORIGINAL,)
_REARMED = ("status", "status_reason", "finished_at", "next_attempt_at", "round_attempts")


def _config_problems(config: dict[str, Any], allowed: set[str]) -> list[str]:
    extra = sorted(set(config) - allowed)
    return [f"Unknown config key {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}."] if extra else []


class CallbackStep(StepKind):
    kind = "callback"

    def validate_config(self, *, config: dict[str, Any], tier: Tier) -> list[str]:
        problems = _config_problems(config, {"callback", "url", "signing"})
        name, url = config.get("callback"), config.get("url")
        if (name is None) == (url is None):
            return [*problems, "Either callback (one of the original's callbacks) or url, not both."]
        if name is not None and name not in CALLBACK_NAMES:
            problems.append(f"callback: one of {', '.join(CALLBACK_NAMES)}.")
        if url is not None:
            if config.get("signing") not in URL_SIGNING:
                problems.append(f"signing: one of {', '.join(URL_SIGNING)} for a url callback.")
            try:
                url_check(str(url))
            except (OutboundRefused, OutboundError) as error:
                problems.append(f"url: {error}")
        elif "signing" in config:
            problems.append("signing: only for a url callback (a named one is signed as the original signs it).")
        return problems

    def _plan(self, context: StepContext) -> PlannedCallback:
        config, tenant, outputs = context.step_run.config, context.tenant, context.outputs
        document = tenant_document_of(tenant=tenant, detail=outputs)
        name = config.get("callback") or DeliveryStep.CONTROL_PLANE_WEBHOOK
        planned = callback_plan(name, tenant=tenant, detail=outputs, document=document, build_succeeded=True)
        if config.get("url"):
            return PlannedCallback(planned.step, str(config["url"]), planned.payload, "", sign_with_context=True)
        return planned

    def start(self, *, context: StepContext) -> StepStart:
        step = context.step_run
        delivery = WebhookDelivery.objects.filter(dedupe_key=f"{CALLBACK_KEY_PREFIX}{step.key}").first()
        if delivery is None:
            planned = self._plan(context)
            if planned.skip_reason:
                return StepFailed(f"Callback {planned.step} cannot be sent: {planned.skip_reason}.")
            delivery = WebhookDelivery.objects.create(
                dedupe_key=f"{CALLBACK_KEY_PREFIX}{step.key}",
                tenant=context.tenant,
                step=planned.step,
                event_type=f"pipeline.{context.run.operation}",
                url=planned.url,
                signing_scheme=SigningScheme.ORIGINAL,
                signing_secret=str(context.outputs.get("secret") or ""),
                signing_context=str(context.outputs.get("context") or ""),
                sign_with_context=planned.sign_with_context,
                body=payload_bytes(planned.payload).decode(),
                payload=redact(planned.payload),
                status=DeliveryStatus.PENDING,
                next_attempt_at=timezone.now(),
            )
        elif delivery.status == DeliveryStatus.SUCCEEDED:
            return StepDone(outputs={"delivery": delivery.pk, "status_code": delivery.last_status_code})
        else:  # an attempt of the step after a failed one: the same message again (same webhook-id)
            delivery.status, delivery.status_reason, delivery.finished_at = DeliveryStatus.PENDING, "", None
            delivery.next_attempt_at, delivery.round_attempts = timezone.now(), 0
            delivery.save(update_fields=[*_REARMED, "updated_at"])
            delivery_history_record(delivery=delivery, summary=f"sent again by pipeline step {step.name}")
        delivery_enqueue(delivery_id=delivery.pk)
        return StepWaits()


def step_delivery_finished(*, delivery: WebhookDelivery) -> None:
    """A pipeline callback's delivery ended (the attempt engine): its step ends with it."""
    if not is_step_callback(delivery) or delivery.status not in {*DONE_STATUSES, DeliveryStatus.FAILED}:
        return
    step = StepRun.objects.filter(key=delivery.dedupe_key.removeprefix(CALLBACK_KEY_PREFIX)).first()
    if step is None:
        return
    succeeded = delivery.status == DeliveryStatus.SUCCEEDED
    step_run_complete(
        step_run_id=step.pk,
        attempt=None,
        succeeded=succeeded,
        outputs={"delivery": delivery.pk, "status_code": delivery.last_status_code},
        error="" if succeeded else f"Callback {delivery.get_step_display()} failed: {delivery.status_reason}",
    )


def is_step_callback(delivery: WebhookDelivery) -> bool:
    return delivery.dedupe_key.startswith(CALLBACK_KEY_PREFIX)


class NotifyStep(StepKind):
    kind = "notify"

    def validate_config(self, *, config: dict[str, Any], tier: Tier) -> list[str]:
        problems = _config_problems(config, {"event_type"})
        if config.get("event_type") not in WebhookEventType.values:
            problems.append(f"event_type: one of {', '.join(WebhookEventType.values)}.")
        return problems

    def start(self, *, context: StepContext) -> StepStart:
        step, tenant = context.step_run, context.tenant
        sent = subscribers_notify(
            tenant=tenant,
            event_type=step.config["event_type"],
            dedupe_prefix=f"pipeline-notify:{step.key}",
            data=subscriber_data(tenant=tenant, pipelineRun=context.run.pk, step=step.name),
        )
        return StepDone(outputs={"notified": len(sent)})


def pipeline_step_kinds() -> list[StepKind]:
    return [CallbackStep(), NotifyStep()]
