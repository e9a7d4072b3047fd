"""Airflow example: the hourly newsbeam batch on Dataflow, one Flex Template launch per data interval.

The run id is the DAG run's data interval (``slot-20261121T10``), not the wall clock: clearing a
task, a retry or a backfill of the same hour re-uses it, and a run with an existing run id
replaces that run's files instead of adding a second copy. Needs apache-airflow-providers-google.
Set the Airflow Variables newsbeam_project, newsbeam_region, newsbeam_bucket, newsbeam_template
and newsbeam_image (see deploy/flex.sh build).
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.models import Variable
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT = Variable.get("newsbeam_project", default_var="your-gcp-project")
REGION = Variable.get("newsbeam_region", default_var="europe-west1")
BUCKET = Variable.get("newsbeam_bucket", default_var="your-bucket")
TEMPLATE = Variable.get("newsbeam_template", default_var=f"gs://{BUCKET}/newsbeam/templates/newsbeam-latest.json")
IMAGE = Variable.get("newsbeam_image", default_var=f"{REGION}-docker.pkg.dev/{PROJECT}/newsbeam/newsbeam:latest")

SLOT = "slot-{{ data_interval_start.strftime('%Y%m%dT%H') }}"

with DAG(
    dag_id="newsbeam_hourly",
    schedule="7 * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,           # one run writes the dedup index at a time
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["newsbeam", "dataflow"],
) as dag:
    DataflowStartFlexTemplateOperator(
        task_id="newsbeam_batch",
        project_id=PROJECT,
        location=REGION,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": "newsbeam-{{ data_interval_start.strftime('%Y%m%d-%H') }}",
                "containerSpecGcsPath": TEMPLATE,
                "parameters": {
                    "command": "run",
                    "profile": "dataflow-batch",
                    "output": f"gs://{BUCKET}/newsbeam/output",
                    "run_id": SLOT,
                    "sdk_container_image": IMAGE,
                },
                "environment": {
                    "tempLocation": f"gs://{BUCKET}/newsbeam/tmp",
                    "stagingLocation": f"gs://{BUCKET}/newsbeam/staging",
                    "maxWorkers": 8,
                },
            }
        },
    )
