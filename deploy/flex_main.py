"""Flex Template entry point: template parameters -> ``newsbeam run`` or ``newsbeam stream``.

The launcher calls ``python flex_main.py --command=run --profile=dataflow-batch
--run_id=slot:3600 ... --project=... --region=... --temp_location=...``. Template
parameters (see metadata.json) become newsbeam options; every other flag is
Beam's and goes after ``--`` (the command line's route for Beam options).

``run_id``: an explicit id (Airflow passes its data interval, e.g. ``slot-20261121T10``),
or ``slot:SECONDS`` = the launch time floored to a slot of that length
(``slot-20261121T1000``). Re-launching a slot whose run committed exits 2 (the
run id is taken; the commit protocol never lets two runs share one); a slot
whose earlier attempt died before its commit runs again under the same id
(recovery removed what that attempt staged). Leave run_id empty for a fresh id
per launch: the cross-run dedup index makes a repeated run add only what is new.
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
    command, out, beam_flags = "run", [], []
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
            beam_flags.append(arg)
    # Submit and let the launcher exit: a stream never ends, and a batch job writes its own
    # manifest when it commits.
    out.append("--no-wait")
    return [command, *out, *(["--", *beam_flags] if beam_flags else [])]


def main(argv: list[str] | None = None) -> int:
    from pipeline.cli import main as newsbeam

    args = translate(list(sys.argv[1:] if argv is None else argv), dt.datetime.now(dt.timezone.utc))
    print("newsbeam " + " ".join(args), flush=True)
    return newsbeam(args)


if __name__ == "__main__":
    sys.exit(main())
