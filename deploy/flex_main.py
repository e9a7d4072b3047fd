"""Flex Template entry point: template parameters -> ``newsbeam run`` or ``newsbeam stream``.

The launcher calls ``python flex_main.py --command=run --profile=dataflow-batch
--run_id=slot:3600 ... --project=... --region=... --temp_location=...``. Template
parameters (see metadata.json) become newsbeam options; every other flag is
Beam's and passes through.

``run_id``: an explicit id (Airflow passes its data interval, e.g. ``slot-20261121T10``),
or ``slot:SECONDS`` = the launch time floored to a slot of that length
(``slot-20261121T1000``). Re-running the same slot - a Cloud Scheduler retry, a
manual re-launch - reuses the run id, and a run replaces the files of an
earlier attempt with the same id instead of adding to them.
"""

from __future__ import annotations

import datetime as dt
import sys

# template parameter -> newsbeam option
PARAMETERS = {"profile": "--profile", "input": "--input", "feeds": "--feeds", "output": "--output",
              "run_id": "--run-id", "workers": "--workers", "duration": "--duration"}
COMMANDS = ("run", "stream")


def slot_run_id(spec: str, now: dt.datetime) -> str:
    """``slot:3600`` at 10:42 UTC -> ``slot-20261121T1000``; anything else is returned as given."""
    if not spec.startswith("slot:"):
        return spec
    seconds = int(spec.split(":", 1)[1])
    if seconds <= 0:
        raise ValueError(f"run_id {spec!r}: the slot length must be positive")
    epoch = int(now.timestamp()) // seconds * seconds
    return "slot-" + dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m%dT%H%M")


def translate(argv: list[str], now: dt.datetime) -> list[str]:
    """Launcher argv -> newsbeam argv (command first)."""
    command, out = "run", []
    for arg in argv:
        name, sep, value = arg.partition("=")
        key = name.lstrip("-")
        if sep and key == "command":
            if value not in COMMANDS:
                raise ValueError(f"command must be one of {COMMANDS}, got {value!r}")
            command = value
        elif sep and key in PARAMETERS:
            if value == "":
                continue  # optional parameter left empty
            out.append(f"{PARAMETERS[key]}={slot_run_id(value, now) if key == 'run_id' else value}")
        else:
            out.append(arg)
    # Submit and let the launcher exit: a stream never ends, and a batch job writes its own
    # manifest when it commits.
    out.append("--no-wait")
    return [command, *out]


def main(argv: list[str] | None = None) -> int:
    from pipeline.cli import main as newsbeam

    args = translate(list(sys.argv[1:] if argv is None else argv), dt.datetime.now(dt.timezone.utc))
    print("newsbeam " + " ".join(args), flush=True)
    return newsbeam(args)


if __name__ == "__main__":
    sys.exit(main())
