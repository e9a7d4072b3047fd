"""Loading and validating the YAML configuration (run profiles, taxonomy, feeds).

Configuration is data. Each loader turns a YAML file into plain, picklable
Python values and fails with a :class:`ConfigError` that names the file, the
key path and what was expected, so a user can fix the file without reading code.
The generic primitives live in :mod:`schemas.config` (transforms use them too).
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

from schemas.config import (  # noqa: F401  (re-exported: pipeline.config is where callers look)
    CONFIG_DIR,
    PROJECT_ROOT,
    ConfigError,
    Validator,
    deep_merge,
    load_yaml,
    resolve_config_path,
)
from transforms.sources import SOURCE_NAME, glob_regex


# -- run profiles -------------------------------------------------------------

DEFAULT_PROFILE = "local"

RUNNERS = (
    "DirectRunner",
    "BundleBasedDirectRunner",
    "PrismRunner",
    "DataflowRunner",
    "FlinkRunner",
    "SparkRunner",
    "PortableRunner",
)

# Keys of a profile and the checker for each; nested sections list their own keys.
_SECTION_KEYS: dict[str, set[str]] = {
    "read": {"max_bytes", "dead_letter_payload_bytes", "max_title_chars", "min_body_chars", "max_files_per_run"},
    "language": {"detector", "second_opinion", "max_chars", "min_chars", "min_confidence", "seed"},
    "dedup": {
        "enabled_near", "shingle_size", "num_perm", "bands", "threshold", "window_days", "seed", "max_cluster_candidates",
        "compact_after_segments",
    },
    "write": {"rows_per_file", "shards", "compact_min_files"},
    "stream": {"poll_interval_seconds", "window_seconds", "allowed_lateness_seconds", "dedup_ttl_seconds"},
    "feeds": {"timeout_connect", "timeout_total", "max_bytes", "max_redirects", "user_agent", "backoff_base_seconds",
              "backoff_max_seconds", "allow_future_minutes", "full_text", "max_items_per_run"},
}


def validate_sources(v: Validator, sources: Any) -> None:
    """``sources:``: a mapping from path globs to source names (the first match wins)."""
    sources = v.mapping(sources, "sources")
    for pattern, name in sources.items():
        v.string(pattern, "sources (a glob)")
        path = f"sources[{pattern!r}]"
        v.string(name, path)
        if not SOURCE_NAME.match(name):
            v.fail(path, f"must be 1-100 letters, digits, '_', '.', ':' or '-' (starting with a letter or digit), "
                         f"got {name!r}")
        try:
            glob_regex(pattern)
        except re.error as err:
            v.fail(path, f"not a valid glob: {err}")


def validate_profile(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    v = Validator(source)
    top_keys = {
        "runner", "workers", "direct_running_mode", "input", "feeds_file", "output", "source_name", "topics",
        "run_id", "beam_options", "extends", "sources",
    } | set(_SECTION_KEYS)
    v.mapping(data, "profile", top_keys)
    if "runner" in data:
        v.string(data["runner"], "runner", RUNNERS)
    if "workers" in data:
        v.integer(data["workers"], "workers", 1, 64)
    if "direct_running_mode" in data:
        v.string(data["direct_running_mode"], "direct_running_mode", {"in_memory", "multi_threading", "multi_processing"})
    for key in ("input", "output", "source_name", "topics", "feeds_file", "run_id", "extends"):
        if data.get(key) is not None:
            v.string(data[key], key)
    if "beam_options" in data:
        v.mapping(data["beam_options"], "beam_options")
    if data.get("sources") is not None:
        validate_sources(v, data["sources"])
    if data.get("source_name") is not None and not SOURCE_NAME.match(data["source_name"]):
        v.fail("source_name", f"must be 1-100 letters, digits, '_', '.', ':' or '-' (starting with a letter "
                              f"or digit), got {data['source_name']!r}")
    for section, keys in _SECTION_KEYS.items():
        if section in data:
            v.mapping(data[section], section, keys)
    read = data.get("read", {})
    for key in ("max_bytes", "dead_letter_payload_bytes", "max_title_chars", "min_body_chars", "max_files_per_run"):
        if key in read:
            v.integer(read[key], f"read.{key}", 0)
    lang = data.get("language", {})
    if "detector" in lang:
        v.string(lang["detector"], "language.detector", {"langdetect", "fasttext"})
    if lang.get("second_opinion") is not None:
        v.string(lang["second_opinion"], "language.second_opinion", {"langdetect", "fasttext"})
    for key in ("max_chars", "min_chars", "seed"):
        if key in lang:
            v.integer(lang[key], f"language.{key}", 0)
    if "min_confidence" in lang:
        v.number(lang["min_confidence"], "language.min_confidence", 0, 1)
    dedup = data.get("dedup", {})
    for key in ("shingle_size", "num_perm", "bands", "seed", "max_cluster_candidates", "compact_after_segments"):
        if key in dedup:
            v.integer(dedup[key], f"dedup.{key}", 1)
    if "window_days" in dedup and dedup["window_days"] is not None:
        v.integer(dedup["window_days"], "dedup.window_days", 1)
    if "threshold" in dedup:
        v.number(dedup["threshold"], "dedup.threshold", 0, 1)
    if "enabled_near" in dedup:
        v.boolean(dedup["enabled_near"], "dedup.enabled_near")
    if "num_perm" in dedup and "bands" in dedup and dedup["num_perm"] % dedup["bands"]:
        v.fail("dedup.bands", f"must divide dedup.num_perm ({dedup['num_perm']}) evenly, got {dedup['bands']}")
    write = data.get("write", {})
    for key in ("rows_per_file", "shards"):
        if key in write:
            v.integer(write[key], f"write.{key}", 1)
    if "compact_min_files" in write:
        v.integer(write["compact_min_files"], "write.compact_min_files", 0)
    feeds = data.get("feeds", {})
    if "max_items_per_run" in feeds:
        v.integer(feeds["max_items_per_run"], "feeds.max_items_per_run", 0)
    stream = data.get("stream", {})
    for key in ("poll_interval_seconds", "window_seconds", "allowed_lateness_seconds", "dedup_ttl_seconds"):
        if key in stream:
            v.integer(stream[key], f"stream.{key}", 0 if key == "allowed_lateness_seconds" else 1)
    return dict(data)


def load_profile(name_or_path: str = DEFAULT_PROFILE, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a run profile; ``extends: other`` inherits from another profile first."""
    source = resolve_config_path(name_or_path)
    if os.path.realpath(source) in {os.path.realpath(s) for s in _chain}:
        raise ConfigError(f"{source}: extends: profiles extend each other in a loop: {' -> '.join([*_chain, source])}")
    data = load_yaml(source)
    validate_profile(data, source)
    parent = data.pop("extends", None)
    if parent:
        try:
            resolve_config_path(parent)
        except ConfigError as err:
            raise ConfigError(f"{source}: extends: {err}") from err
        data = deep_merge(load_profile(parent, (*_chain, source)), data)
    return data

