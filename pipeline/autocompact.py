"""Compaction after a run: ``watch`` after every poll, ``run --compact`` after the run.

Scheduled runs add a few small files to the month partitions they touch, every time. Once such a
partition holds ``write.compact_min_files`` small files, they are merged (``transforms.rewrite.compact``,
its own crash-safe commit under the writer lease, taken after the run has released it). Only the
months the run wrote are looked at, so the cost does not grow with the archive.
"""

from __future__ import annotations

from typing import Any, Mapping


def touched_partitions(manifest: Mapping[str, Any]) -> set[str]:
    """``published_month=YYYY-MM`` folders a run wrote articles to, from its manifest's counters."""
    dates = (manifest.get("counters") or {}).get("published_date") or {}
    return {f"published_month={day[:7]}" for day, count in dates.items() if count}


def compact_after(settings, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Compact the months ``manifest``'s run wrote when one holds ``write.compact_min_files`` small
    files; None when compaction is off (0) or the run wrote no articles. Waits for the lease as long
    as the run was allowed to (``--wait-lock``)."""
    from transforms.rewrite import compact

    min_files = int(settings.write.get("compact_min_files", 0) or 0)
    partitions = touched_partitions(manifest)
    if min_files <= 0 or not partitions:
        return None
    result = compact(settings.output, min_files=min_files, partitions=partitions,
                     wait_seconds=settings.wait_lock_seconds)
    return {k: v for k, v in result.items() if k != "manifest"}


def describe(result: Mapping[str, Any] | None) -> str:
    """One line for the summary: ``compacted 9 files into 1 (run compact-...)``; empty when nothing happened."""
    if not result or result.get("status") != "compacted":
        return ""
    return (f"compacted {result['files_read']} small files into {result['files_written']} "
            f"(run {result['run_id']})")
