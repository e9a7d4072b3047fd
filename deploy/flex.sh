#!/usr/bin/env bash
# Build, launch and schedule the newsbeam Flex Template on Dataflow.
# Prints the gcloud commands; runs them only with EXECUTE=1 (needs gcloud, a project and credentials).
#
#   PROJECT=my-proj REGION=europe-west1 BUCKET=my-bucket deploy/flex.sh build
#   ... deploy/flex.sh run-batch [RUN_ID]      # one batch run (default run id: slot:3600)
#   ... deploy/flex.sh run-stream              # start the continuous stream
#   ... deploy/flex.sh schedule                # Cloud Scheduler: hourly batch, the slot as run id
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=${PROJECT:-your-gcp-project}
REGION=${REGION:-europe-west1}
BUCKET=${BUCKET:-your-bucket}
REPO=${REPO:-newsbeam}                       # Artifact Registry (docker) repository
TAG=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo latest)}
IMAGE=${IMAGE:-$REGION-docker.pkg.dev/$PROJECT/$REPO/newsbeam:$TAG}
TEMPLATE=${TEMPLATE:-gs://$BUCKET/newsbeam/templates/newsbeam-$TAG.json}
OUTPUT=${OUTPUT:-gs://$BUCKET/newsbeam/output}
SERVICE_ACCOUNT=${SERVICE_ACCOUNT:-newsbeam-runner@$PROJECT.iam.gserviceaccount.com}
SCHEDULE=${SCHEDULE:-"7 * * * *"}            # minute 7 of every hour, UTC
SLOT_SECONDS=${SLOT_SECONDS:-3600}

do_run() { local cmd=$1; shift; printf '+ %s' "$cmd"; printf ' %q' "$@"; printf '\n'; [[ "${EXECUTE:-0}" == 1 ]] && "$cmd" "$@" || true; }

common_env=(--region="$REGION" --temp-location="gs://$BUCKET/newsbeam/tmp"
            --staging-location="gs://$BUCKET/newsbeam/staging" --service-account-email="$SERVICE_ACCOUNT")

case "${1:-help}" in
  build)
    do_run gcloud artifacts repositories create "$REPO" --repository-format=docker --location="$REGION" \
      --project="$PROJECT"
    do_run gcloud builds submit --project="$PROJECT" --region="$REGION" \
      --config=/dev/stdin . <<<"steps: [{name: gcr.io/cloud-builders/docker, args: [build, -f, deploy/Dockerfile, -t, '$IMAGE', .]}]
images: ['$IMAGE']"
    do_run gcloud dataflow flex-template build "$TEMPLATE" --image="$IMAGE" --sdk-language=PYTHON \
      --metadata-file=deploy/metadata.json --project="$PROJECT"
    ;;
  run-batch)
    do_run gcloud dataflow flex-template run "newsbeam-batch-$(date -u +%Y%m%d-%H%M)" \
      --template-file-gcs-location="$TEMPLATE" --project="$PROJECT" "${common_env[@]}" \
      --parameters=command=run,profile=dataflow-batch,output="$OUTPUT",run_id="${2:-slot:$SLOT_SECONDS}" \
      --parameters=sdk_container_image="$IMAGE"
    ;;
  run-stream)
    do_run gcloud dataflow flex-template run "newsbeam-stream" \
      --template-file-gcs-location="$TEMPLATE" --project="$PROJECT" "${common_env[@]}" \
      --enable-streaming-engine \
      --parameters=command=stream,profile=dataflow-streaming,output="$OUTPUT",run_id=stream-main \
      --parameters=sdk_container_image="$IMAGE"
    ;;
  schedule)
    body=$(sed -e "s|@PROJECT@|$PROJECT|g; s|@REGION@|$REGION|g; s|@BUCKET@|$BUCKET|g; s|@TEMPLATE@|$TEMPLATE|g" \
               -e "s|@IMAGE@|$IMAGE|g; s|@OUTPUT@|$OUTPUT|g; s|@SA@|$SERVICE_ACCOUNT|g; s|@SLOT@|$SLOT_SECONDS|g" \
               deploy/scheduler-launch-body.json)
    do_run gcloud scheduler jobs create http newsbeam-hourly --project="$PROJECT" --location="$REGION" \
      --schedule="$SCHEDULE" --time-zone=UTC --http-method=POST \
      --uri="https://dataflow.googleapis.com/v1b3/projects/$PROJECT/locations/$REGION/flexTemplates:launch" \
      --oauth-service-account-email="$SERVICE_ACCOUNT" --headers=Content-Type=application/json \
      --attempt-deadline=320s --max-retry-attempts=3 --min-backoff=60s \
      --message-body="$body"
    ;;
  *)
    sed -n '2,8p' "$0"
    ;;
esac
