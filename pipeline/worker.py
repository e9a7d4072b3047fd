"""Entry point of the local worker processes that ``--workers N`` starts (Beam's SDK harness, quiet).

Beam starts ``python -m apache_beam.runners.worker.sdk_worker_main`` per worker; that logs its
start-up and shutdown at INFO straight to the terminal, warns about a missing "semi persistent
directory" that only matters on Dataflow, and dies with a traceback on Ctrl-C. This wrapper runs
the same harness with:

* a root handler that prints only CRITICAL records (everything else reaches the launching process
  through Beam's log relay, where ``--log-level`` decides what is shown), so the harness's
  start-up chatter never reaches the terminal;
* the harness's own logger at ERROR (its start-up INFO lines and that warning);
* SIGINT ignored: Ctrl-C is handled once, by the launching process, which shuts the workers down.
"""

from __future__ import annotations

import logging
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setLevel(logging.CRITICAL)
    handler.setFormatter(logging.Formatter("newsbeam worker: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)  # also keeps logging.warning() from installing a default INFO handler
    logging.getLogger("apache_beam.runners.worker.sdk_worker_main").setLevel(logging.ERROR)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
