"""Fetch one URL with transforms.fetch.http_get in a fresh process; print JSON with the outcome,
the seconds taken and the process's peak RSS before and after (for the hardening tests and bench).

usage: python tests/fetch_probe.py URL MAX_BYTES TIMEOUT_TOTAL
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time

from transforms.fetch import FetchError, FetchSettings, NetworkPolicy, http_get, make_client


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, max_bytes, timeout = argv[0], int(argv[1]), float(argv[2])
    settings = FetchSettings(timeout_connect=min(timeout, 5.0), timeout_total=timeout, max_bytes=max_bytes,
                             max_redirects=3, user_agent="newsbeam-probe/1", backoff_base_seconds=60,
                             backoff_max_seconds=3600)
    with make_client(settings) as client:
        before = peak_rss_mb()
        started = time.monotonic()
        try:
            result = http_get(client, url, {}, settings, NetworkPolicy(allow_private_networks=True),
                              dt.datetime.now(dt.timezone.utc))
            outcome, size = "ok", len(result.body)
        except FetchError as err:
            outcome, size = str(err), 0
        seconds = time.monotonic() - started
    print(json.dumps({"outcome": outcome, "bytes": size, "seconds": round(seconds, 3),
                      "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak_rss_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
