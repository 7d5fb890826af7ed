#!/usr/bin/env bash
# Sample tenant build for the LOCAL builder (tiers BASIC/STANDARD/PREMIUM of `manage.py seed_demo`).
#
#   demo/build.sh provision     stands in for a tier's CodeBuild provisioning project
#   demo/build.sh deprovision   stands in for its deprovisioning project
#   demo/build.sh update|suspend|resume   stand in for its operations' projects (PREVIOUS_TIER on an update)
#
# The orchestrator runs it from the repository root with the build's environment: the tier variables,
# TENANT_ID / TENANT_KEY / TENANT_NAME / TIER / PLAN_ID, the plan's sizeConfig keys, `tenant` (JSON),
# the builder overrides (`secret`, `context`...), CODEBUILD_BUILD_ID and ORCHESTRATOR_OUTPUT_FILE.
# Outputs are KEY=VALUE lines appended to $ORCHESTRATOR_OUTPUT_FILE (stdout when run by hand); the
# orchestrator posts them back as TENANT_PROVISIONING_SUCCESS / _FAILURE, like a CodeBuild post-build step.
#
# Knobs (tier variables or builder overrides):
#   FAIL_BUILD=1            fail every run; FAIL_BUILD=provision / =deprovision fails only that phase
#   BUILD_SECONDS=N         pretend to work for N seconds (default 0)
#   DEMO_RECEIVER_URL       base URL of the demo callback receiver (default http://127.0.0.1:8100); the
#                           control-plane webhook, app-plane bootstrap and feature service all point at it
set -euo pipefail

phase="${1:-provision}"
case "$phase" in
  provision | deprovision | update | suspend | resume) ;;
  *) echo "usage: $0 provision|deprovision|update|suspend|resume" >&2; exit 64 ;;
esac

: "${TENANT_ID:?TENANT_ID is not set}"
tenant_key="${TENANT_KEY:-$TENANT_ID}"
receiver="${DEMO_RECEIVER_URL:-http://127.0.0.1:8100}"
receiver="${receiver%/}"
output="${ORCHESTRATOR_OUTPUT_FILE:-/dev/stdout}"

emit() { printf '%s=%s\n' "$1" "$2" >>"$output"; }

echo "[$phase] tenant ${TENANT_NAME:-?} (key $tenant_key, id $TENANT_ID), tier ${TIER:-?}, plan ${PLAN_ID:-?}"
echo "[$phase] build ${CODEBUILD_BUILD_ID:-by-hand}"

seconds="${BUILD_SECONDS:-0}"
if [[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)); then
  for step in $(seq 1 "$seconds"); do
    echo "[$phase] working... ($step/$seconds)"
    sleep 1
  done
fi

case "${FAIL_BUILD:-}" in
  1 | true | yes | "$phase")
    echo "[$phase] FAIL_BUILD=${FAIL_BUILD} set: failing on purpose" >&2
    exit 1
    ;;
esac

if [[ "$phase" == "provision" ]]; then
  # What the real buildspec exports for the deployment step (see TENANT_DEPLOYMENT in the README).
  client_secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  emit API_ENDPOINT "$receiver/webhook"
  emit USER_CALLBACK_ENDPOINT "$receiver/$tenant_key/user-callback"
  emit APP_PLANE_ENDPOINT_FEATURE_SERVICE "$receiver/$tenant_key/feature-service"
  emit APP_PLANE_REDIRECT_URL "$receiver/$tenant_key/app"
  emit TF_STATE_BUCKET "demo-terraform-state"
  emit TF_KEY "tenants/$tenant_key/terraform.tfstate"
  emit CLIENT_ID "demo-$tenant_key"
  emit CLIENT_SECRET "$client_secret"
  emit CODEBUILD_BUILD_POSTBUILD 1
  echo "[$phase] tenant $tenant_key provisioned; app plane at $receiver/$tenant_key/app"
elif [[ "$phase" == "deprovision" ]]; then
  emit CODEBUILD_BUILD_POSTBUILD 1
  echo "[$phase] tenant $tenant_key resources removed"
else
  emit CODEBUILD_BUILD_POSTBUILD 1
  echo "[$phase] tenant $tenant_key ${phase} done (tier ${PREVIOUS_TIER:-${TIER:-?}} -> ${TIER:-?})"
fi
