"""Loading and validating the YAML configuration (run profiles, taxonomy, feeds).

Configuration is data. Each loader turns a YAML file into plain, picklable
Python values and fails with a :class:`ConfigError` that names the file, the
key path and what was expected, so a user can fix the file without reading code.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Iterable, Mapping

import yaml

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(PROJECT_ROOT, "configs")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


def resolve_config_path(path: str) -> str:
    """Find a config file as given, relative to the working dir, or under configs/."""
    candidates = [path, os.path.join(PROJECT_ROOT, path), os.path.join(CONFIG_DIR, path)]
    if not path.endswith((".yaml", ".yml")):
        candidates.append(os.path.join(CONFIG_DIR, path + ".yaml"))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(f"config file not found: {path!r} (looked in the working directory and {CONFIG_DIR})")


def load_yaml(path: str) -> dict[str, Any]:
    resolved = resolve_config_path(path)
    try:
        with open(resolved, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ConfigError(f"{resolved}: not valid YAML: {err}") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{resolved}: the top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested mappings merge key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Validator:
    """Small checker for nested YAML mappings that reports the path of each problem."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str) -> None:
        raise ConfigError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                self.fail(path, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return dict(value)

    def number(self, value: Any, path: str, minimum: float | None = None, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(path, f"must be <= {maximum}, got {value}")
        return value

    def integer(self, value: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected a whole number, got {value!r}")
        return int(self.number(value, path, minimum, maximum))

    def string(self, value: Any, path: str, choices: Iterable[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(path, f"must be one of {sorted(choices)}, got {value!r}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}")
        return value

    def string_list(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            self.fail(path, f"expected a list of strings, got {type(value).__name__}")
        return [self.string(v, f"{path}[{i}]") for i, v in enumerate(value)]


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
    "language": {"detector", "max_chars", "min_chars", "min_confidence", "seed"},
    "dedup": {
        "enabled_near", "shingle_size", "num_perm", "bands", "threshold", "window_days", "seed", "max_cluster_candidates",
        "compact_after_segments",
    },
    "write": {"rows_per_file", "shards"},
    "stream": {"poll_interval_seconds", "window_seconds", "allowed_lateness_seconds", "dedup_ttl_seconds"},
    "feeds": {"timeout_connect", "timeout_total", "max_bytes", "max_redirects", "user_agent", "backoff_base_seconds",
              "backoff_max_seconds", "allow_future_minutes", "full_text"},
}


def validate_profile(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    v = Validator(source)
    top_keys = {
        "runner", "workers", "direct_running_mode", "input", "feeds_file", "output", "source_name", "topics",
        "run_id", "beam_options", "extends",
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

