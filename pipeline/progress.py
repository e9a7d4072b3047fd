"""Progress of a run on a terminal: a bar of inputs done, with rate and time left (tqdm, on stderr).

An input is *done* when it has become an article (after the topics step, the last before
writing), a duplicate or a dead letter; the bar's total is the number of matched files (for feeds,
the items read so far). Counting happens in two small branches of the graph that emit nothing
(:func:`attach`); they are added only while a :class:`Progress` display is active in this process,
so jobs for Dataflow, the tests and ``--quiet`` runs have the same graph as before. The counters
are module globals: they see the in-process runner's work. With ``--workers N`` the steps run in
other processes, so the bar shows the elapsed time only.

A thread redraws the bar a few times a second from the counters; the DoFns only add 1 to a
dict entry per element, so the display stays off the hot path.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Iterable

import apache_beam as beam

_COUNTS = {"read": 0, "done": 0}
_ACTIVE = [False]


class _Tick(beam.DoFn):
    """Adds 1 per element to one counter of this process; emits nothing."""

    def __init__(self, key: str, batched: bool = False):
        self._key = key
        self._batched = batched

    def process(self, element):
        _COUNTS[self._key] += len(element) if self._batched else 1
        return ()


def active() -> bool:
    return _ACTIVE[0]


def attach(read: Iterable[Any], done: Iterable[Any], batches: Iterable[Any] = ()) -> None:
    """Count ``read`` (items and read failures) and ``done`` (articles, duplicates, dead letters)
    PCollections, when a display is active; otherwise add nothing to the graph. The PCollections
    in ``batches`` hold lists: their lists' elements are counted."""
    if not _ACTIVE[0]:
        return
    batches = list(batches)
    for key, pcolls in (("read", list(read)), ("done", list(done))):
        # one counter per PCollection, no Flatten: each fuses into the stage that produces its
        # elements, so the count moves while that stage runs (a Flatten would wait for all of them)
        for number, pcoll in enumerate(pcolls):
            batched = any(pcoll is b for b in batches)
            _ = pcoll | f"Progress{key.capitalize()}{number}" >> beam.ParDo(_Tick(key, batched))


def wanted(quiet: bool, stream=None) -> bool:
    """A bar only on an interactive terminal, and never with ``--quiet``."""
    stream = stream or sys.stderr
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """Context manager: the bar while the block runs; ``elapsed`` seconds afterwards (always set)."""

    def __init__(self, total: int | None = None, enabled: bool = True, counted: bool = True,
                 unit: str = "input", interval: float = 0.2, stream=None):
        self.total = total
        self.enabled = enabled
        self.counted = counted  # False: the work runs in other processes (--workers N)
        self.unit = unit
        self.interval = interval
        self.stream = stream or sys.stderr
        self.elapsed = 0.0
        self._start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None
        self._logging = contextlib.ExitStack()

    def __enter__(self) -> "Progress":
        self._start = time.perf_counter()
        if not self.enabled:
            return self
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        _COUNTS.update(read=0, done=0)
        _ACTIVE[0] = self.counted
        if self.counted:
            self._bar = tqdm(total=self.total, unit=f" {self.unit}s", file=self.stream, dynamic_ncols=True,
                             leave=False, smoothing=0.1, desc="newsbeam")
        else:
            self._bar = tqdm(total=None, file=self.stream, leave=False, desc="newsbeam: running on worker processes",
                             bar_format="{desc} {elapsed}")
        self._logging.enter_context(logging_redirect_tqdm(tqdm_class=tqdm))  # log lines above the bar
        self._thread = threading.Thread(target=self._redraw, name="newsbeam-progress", daemon=True)
        self._thread.start()
        return self

    def _update(self) -> None:
        bar = self._bar
        if self.counted:
            read, done = _COUNTS["read"], _COUNTS["done"]
            total = self.total if self.total is not None else read
            if total != bar.total:
                bar.total = max(total, done)
            bar.n = done
        bar.refresh()

    def _redraw(self) -> None:
        while not self._stop.wait(self.interval):
            self._update()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.elapsed = time.perf_counter() - self._start
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._logging.close()
        if exc_type is None:
            self._update()
        self._bar.close()
        _ACTIVE[0] = False


def count_files(patterns) -> int | None:
    """How many paths the input patterns match (as the read step counts them), None if unknown."""
    from apache_beam.io.filesystems import FileSystems

    try:
        return sum(len(result.metadata_list) for result in FileSystems.match(list(patterns)))
    except Exception:  # an unreadable root: the run reports it; the bar goes without a total
        return None


def for_run(settings, quiet: bool, wait: bool = True, stream=None) -> Progress:
    """The display for one ``run``: enabled on a terminal for a run this process waits for."""
    from pipeline.runner import IN_PROCESS, running_mode_for

    enabled = wanted(quiet, stream) and wait
    local = settings.runner in (IN_PROCESS, "BundleBasedDirectRunner")
    counted = local and running_mode_for(settings.workers, settings.direct_running_mode) != "multi_processing"
    total = None
    if enabled and counted and settings.inputs and not settings.feeds_file:
        total = count_files(settings.inputs)
    return Progress(total=total, enabled=enabled and (local or not counted), counted=counted, stream=stream)
