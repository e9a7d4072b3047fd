"""Deployment: Dataflow Flex Template entry point, Airflow DAG, and the offline Dataflow dry run."""
