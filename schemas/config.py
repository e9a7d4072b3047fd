"""Loading and validating YAML configuration: the primitives every config file uses.

``ConfigError``, ``Validator``, ``load_yaml`` and ``resolve_config_path`` sit below both
transforms/ (the taxonomy) and pipeline/ (run profiles, feeds), so neither imports upward.
Each loader turns a YAML file into plain, picklable Python values and fails with a
:class:`ConfigError` that names the file, the key path and what was expected.
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


# libyaml's safe loader when PyYAML was built with it (the same documents; configs/topics.yaml 0.58 -> 0.06 s),
# else the pure-Python one.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str) -> dict[str, Any]:
    resolved = resolve_config_path(path)
    try:
        with open(resolved, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_SAFE_LOADER)
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
