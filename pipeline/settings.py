"""Run settings: a profile from configs/ merged with command-line overrides.

:class:`RunSettings` is plain data, safe to pickle into the pipeline. Every
default lives in a YAML profile (``configs/local.yaml``), none in code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any, Mapping

from pipeline.config import ConfigError, deep_merge, load_profile, validate_profile
from transforms.common import RunInfo

REQUIRED_SECTIONS = ("read", "language", "dedup", "write")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    profile: str
    runner: str
    workers: int
    direct_running_mode: str
    inputs: tuple[str, ...]
    feeds_file: str | None
    output: str
    source_name: str
    topics: str
    run_id: str | None
    read: Mapping[str, Any]
    language: Mapping[str, Any]
    dedup: Mapping[str, Any]
    write: Mapping[str, Any]
    feeds: Mapping[str, Any]
    beam_options: Mapping[str, Any]
    stream: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Set by pipeline.chunking for the sub-runs of a chunked run: the parent's run id.
    parent_run_id: str | None = None
    # Run ids whose output this run replaces (--replace-run): purged when it commits, and their
    # dedup index rows are not "earlier articles" for it.
    replaces_runs: tuple[str, ...] = ()
    # The run id under which the caller already holds the output's writer lease (chunked runs,
    # watch), and how long to wait for the lease when another writer holds it (--wait-lock).
    lease_owner: str | None = None
    wait_lock_seconds: float = 0.0
    # Profile `sources:`: (glob, source name) pairs, the first match wins; else source_name.
    sources: tuple[tuple[str, str], ...] = ()

    def source(self):
        """What the read step stamps as ``source``: the name, or a path -> name map (transforms.sources)."""
        from transforms.sources import source_for

        return source_for(self.source_name, self.sources)

    def default_run_id(self, now: dt.datetime | None = None) -> str:
        """A fresh run id for every invocation: ``files-20261201T120000-1a2b3c``.

        Never derived from the inputs: re-running a command over the same or a grown input adds
        what is new (the cross-run dedup index), and never replaces an earlier run's rows."""
        now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
        kind = "feeds" if self.feeds_file and not self.inputs else "files"
        return f"{kind}-{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"

    def run_info(self, now: dt.datetime | None = None) -> RunInfo:
        now = now or dt.datetime.now(dt.timezone.utc)
        return RunInfo(run_id=self.run_id or self.default_run_id(now), ingested_at=now.replace(microsecond=0))


def _check_run_id(run_id: str | None) -> str | None:
    if run_id is None:
        return None
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not run_id or set(run_id) - allowed:
        raise ConfigError(f"run id {run_id!r} may only contain letters, digits, '-', '_' and '.'")
    return run_id


def build_settings(profile: str, overrides: Mapping[str, Any] | None = None) -> RunSettings:
    """Load ``profile`` and apply ``overrides`` (values None are ignored)."""
    data = load_profile(profile)
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = deep_merge(data, clean)
    validate_profile({k: v for k, v in data.items() if k != "inputs"}, f"profile {profile!r} with overrides")
    for section in REQUIRED_SECTIONS:
        if section not in data:
            raise ConfigError(f"profile {profile!r}: missing section {section!r}")
    inputs = clean.get("inputs") or ([data["input"]] if data.get("input") else [])
    if "feeds_file" in clean and "inputs" not in clean:
        inputs = []  # --feeds alone means: feeds only, not the profile's default files
    if not inputs and not data.get("feeds_file"):
        raise ConfigError("nothing to read: give --input PATTERN or --feeds FILE (or set input: in the profile)")
    for key in ("output", "source_name", "topics"):
        if not data.get(key):
            raise ConfigError(f"profile {profile!r}: missing {key!r}")
    return RunSettings(
        profile=profile,
        runner=data.get("runner", "DirectRunner"),
        workers=int(data.get("workers", 1)),
        direct_running_mode=data.get("direct_running_mode", "in_memory"),
        inputs=tuple(inputs),
        feeds_file=data.get("feeds_file"),
        output=data["output"],
        source_name=data["source_name"],
        topics=data["topics"],
        run_id=_check_run_id(data.get("run_id")),
        read=dict(data["read"]),
        language=dict(data["language"]),
        dedup=dict(data.get("dedup", {})),
        write=dict(data["write"]),
        feeds=dict(data.get("feeds", {})),
        beam_options=dict(data.get("beam_options", {})),
        stream=dict(data.get("stream", {})),
        sources=tuple((str(k), str(v)) for k, v in (data.get("sources") or {}).items()),
    )
