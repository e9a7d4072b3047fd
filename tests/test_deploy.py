"""deploy/: the Flex Template entry point maps template parameters to the CLI; slots give stable run ids."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json

import pytest

from conftest import PROJECT
from pipeline.cli import build_parser, parse

spec = importlib.util.spec_from_file_location("flex_main", PROJECT / "deploy" / "flex_main.py")
flex_main = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flex_main)

UTC = dt.timezone.utc


def test_same_slot_same_run_id():
    first = flex_main.slot_run_id("slot:3600", dt.datetime(2026, 11, 21, 10, 7, tzinfo=UTC))
    retry = flex_main.slot_run_id("slot:3600", dt.datetime(2026, 11, 21, 10, 59, 59, tzinfo=UTC))
    later = flex_main.slot_run_id("slot:3600", dt.datetime(2026, 11, 21, 11, 0, tzinfo=UTC))
    assert first == retry == "slot-20261121T1000"
    assert later == "slot-20261121T1100"
    assert flex_main.slot_run_id("slot-20261121T10", dt.datetime.now(UTC)) == "slot-20261121T10"
    with pytest.raises(ValueError):
        flex_main.slot_run_id("slot:0", dt.datetime.now(UTC))


def test_template_parameters_become_cli_options():
    now = dt.datetime(2026, 11, 21, 10, 7, tzinfo=UTC)
    argv = flex_main.translate(["--command=run", "--profile=dataflow-batch", "--output=gs://b/out", "--input=",
                                "--run_id=slot:3600", "--project=p", "--region=r"], now)
    assert argv == ["run", "--profile=dataflow-batch", "--output=gs://b/out", "--run-id=slot-20261121T1000",
                    "--no-wait", "--", "--project=p", "--region=r"]
    args, extra = parse(build_parser(), argv)
    assert (args.command, args.run_id, args.output, extra) == ("run", "slot-20261121T1000", "gs://b/out",
                                                               ["--project=p", "--region=r"])
    assert args.wait is False  # the launcher submits the batch job and exits
    stream = flex_main.translate(["--command=stream", "--profile=dataflow-streaming", "--output=gs://b/o"], now)
    args, _ = parse(build_parser(), stream)
    assert args.command == "stream" and args.wait is False
    with pytest.raises(ValueError):
        flex_main.translate(["--command=drop-tables"], now)


def test_metadata_declares_every_parameter_the_entry_point_reads():
    metadata = json.loads((PROJECT / "deploy" / "metadata.json").read_text())
    names = {p["name"] for p in metadata["parameters"]}
    assert {"command", "profile", "output", "run_id"} <= names
    assert names - {"command"} <= set(flex_main.PARAMETERS)
    body = json.loads((PROJECT / "deploy" / "scheduler-launch-body.json").read_text())
    scheduled = set(body["launchParameter"]["parameters"]) - {"sdk_container_image"}  # a Dataflow parameter
    assert scheduled <= names
    assert body["launchParameter"]["parameters"]["run_id"].startswith("slot:")
