"""Loading and validating the feeds file (``configs/feeds.yaml``).

Format::

    allow_private_networks: false   # true only for tests and local setups
    allow_networks: []              # CIDRs allowed even so, e.g. an intranet feed host
    fetch:                          # optional: overrides the profile's `feeds:` fetch settings
      timeout_total: 30
    feeds:
      - name: tagesschau            # unique; the `source` column of its articles
        url: https://www.tagesschau.de/xml/rss2/
        language: de                # optional declared language (ISO 639-1)
        enabled: true               # optional, default true
        full_text: true             # optional, default true: fetch each item's page (docs/fulltext.md)
    full_text:                      # optional: the page fetch (transforms/page.py PageSettings)
      contact: ops@example.org      # put in the User-Agent of page requests
      min_delay_seconds: 2          # per host

The fetch settings themselves (timeouts, body limit, redirects, User-Agent,
backoff) live in the run profile's ``feeds:`` section; see configs/local.yaml.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import ConfigError, Validator, load_yaml, resolve_config_path
from transforms.fetch import FetchSettings, NetworkPolicy
from transforms.page import PageSettings

FETCH_KEYS = ("timeout_connect", "timeout_total", "max_bytes", "max_redirects", "user_agent",
              "backoff_base_seconds", "backoff_max_seconds")
_FEED_KEYS = {"name", "url", "language", "enabled", "full_text"}
_TOP_KEYS = {"allow_private_networks", "allow_networks", "fetch", "feeds", "full_text"}
PAGE_KEYS = tuple(f.name for f in dataclasses.fields(PageSettings)) + ("contact",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-()&]*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")


@dataclasses.dataclass(frozen=True)
class FeedsConfig:
    source: str
    feeds: tuple[Mapping[str, Any], ...]      # enabled feeds: {'name', 'url', 'language'}
    policy: NetworkPolicy
    fetch_overrides: Mapping[str, Any]
    full_text: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the file's `full_text:` section
    no_full_text: tuple[str, ...] = ()        # names of feeds with `full_text: false`


def validate_fetch(values: Mapping[str, Any], v: Validator, path: str, require_all: bool) -> dict[str, Any]:
    """Check fetch settings (``timeout_connect`` ... ``backoff_max_seconds``)."""
    out = {}
    for key in FETCH_KEYS:
        if key not in values:
            if require_all:
                v.fail(f"{path}.{key}", "missing; set it in the run profile's `feeds:` section (configs/local.yaml)")
            continue
        value = values[key]
        if key == "user_agent":
            out[key] = v.string(value, f"{path}.{key}")
        elif key in ("max_bytes", "max_redirects"):
            out[key] = v.integer(value, f"{path}.{key}", 0 if key == "max_redirects" else 1)
        else:
            out[key] = v.number(value, f"{path}.{key}", 0.001 if key.startswith("timeout") else 0)
    return out


def validate_full_text(values: Mapping[str, Any], v: Validator) -> dict[str, Any]:
    """Check the feeds file's ``full_text:`` section (keys of :class:`PageSettings`, plus ``contact``)."""
    defaults = PageSettings()
    out = {}
    for key, value in values.items():
        path = f"full_text.{key}"
        if key in ("user_agent", "contact"):
            out[key] = v.string(value, path)
        elif key in ("enabled", "fallbacks"):
            out[key] = v.boolean(value, path)
        elif isinstance(getattr(defaults, key), int) and not isinstance(getattr(defaults, key), bool):
            out[key] = v.integer(value, path, 0 if key in ("retries", "refetch_after_days") else 1)
        else:
            out[key] = v.number(value, path, 0)
    return out


def page_settings(profile_feeds: Mapping[str, Any], config: FeedsConfig, enabled: bool = True) -> PageSettings:
    """Settings of the page fetch: defaults, the feeds file's ``full_text:`` section, and ``enabled``
    (false with ``--no-full-text`` or the profile's ``feeds.full_text: false``). The User-Agent is the
    feeds' one (or ``full_text.user_agent``) plus ``full_text.contact``."""
    switch = profile_feeds.get("full_text", True)
    if not isinstance(switch, bool):
        raise ConfigError(f"profile feeds.full_text: expected true or false, got {switch!r}")
    values = dict(config.full_text)
    contact = values.pop("contact", None)
    agent = values.pop("user_agent", None) or profile_feeds.get("user_agent") or PageSettings.user_agent
    if contact:
        agent = f"{agent.rstrip(')')}; contact: {contact})" if agent.endswith(")") else f"{agent} ({contact})"
    values["enabled"] = bool(values.get("enabled", True)) and enabled and switch
    return PageSettings(user_agent=agent, **values)


def validate_feeds(data: Mapping[str, Any], source: str) -> FeedsConfig:
    v = Validator(source)
    v.mapping(data, "feeds file", _TOP_KEYS)
    if "feeds" not in data:
        v.fail("feeds", "missing: list the feeds as `feeds: [{name: ..., url: ...}, ...]`")
    allow_private = v.boolean(data.get("allow_private_networks", False), "allow_private_networks")
    networks = []
    for i, cidr in enumerate(v.string_list(data.get("allow_networks", []), "allow_networks")):
        try:
            networks.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            v.fail(f"allow_networks[{i}]", f"expected a network like 10.0.0.0/8 or 127.0.0.1/32, got {cidr!r}")
    fetch = validate_fetch(v.mapping(data.get("fetch", {}), "fetch", set(FETCH_KEYS)), v, "fetch", False)
    if not isinstance(data["feeds"], list) or not data["feeds"]:
        v.fail("feeds", f"expected a non-empty list of feeds, got {data['feeds']!r}")
    full_text = validate_full_text(v.mapping(data.get("full_text", {}), "full_text", set(PAGE_KEYS)), v)
    feeds, names, urls, no_full_text = [], set(), set(), []
    for i, raw in enumerate(data["feeds"]):
        path = f"feeds[{i}]"
        entry = v.mapping(raw, path, _FEED_KEYS)
        for key in ("name", "url"):
            if key not in entry:
                v.fail(path, f"missing {key!r}")
        name = v.string(entry["name"], f"{path}.name").strip()
        if not _NAME.match(name):
            v.fail(f"{path}.name", f"use letters, digits, spaces and - _ . ( ) &, got {name!r}")
        url = v.string(entry["url"], f"{path}.url").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            v.fail(f"{path}.url", f"expected an http:// or https:// URL with a host, got {url!r}")
        language = entry.get("language")
        if language is not None and not _LANGUAGE.match(str(language)):
            v.fail(f"{path}.language", f"expected a two-letter ISO 639-1 code such as de, en, fr, got {language!r}")
        if name in names:
            v.fail(f"{path}.name", f"duplicate feed name {name!r}")
        if url in urls:
            v.fail(f"{path}.url", f"duplicate feed URL {url!r}")
        names.add(name)
        urls.add(url)
        if v.boolean(entry.get("enabled", True), f"{path}.enabled"):
            feeds.append({"name": name, "url": url, "language": language})
            if not v.boolean(entry.get("full_text", True), f"{path}.full_text"):
                no_full_text.append(name)
    if not feeds:
        v.fail("feeds", "every feed is disabled")
    return FeedsConfig(source=source, feeds=tuple(feeds),
                       policy=NetworkPolicy(allow_private_networks=allow_private, allow_networks=tuple(networks)),
                       fetch_overrides=fetch, full_text=full_text, no_full_text=tuple(no_full_text))


def load_feeds(path: str) -> FeedsConfig:
    """Load and validate a feeds file; raises :class:`ConfigError` naming the problem."""
    return validate_feeds(load_yaml(path), resolve_config_path(path))


def fetch_settings(profile_feeds: Mapping[str, Any], config: FeedsConfig, profile: str = "profile") -> FetchSettings:
    """Fetch settings: the profile's ``feeds:`` section, overridden by the feeds file's ``fetch:``."""
    merged = {**{k: profile_feeds[k] for k in FETCH_KEYS if k in profile_feeds}, **config.fetch_overrides}
    values = validate_fetch(merged, Validator(f"{profile} feeds: + {config.source} fetch:"), "feeds", True)
    if values["backoff_max_seconds"] < values["backoff_base_seconds"]:
        raise ConfigError(f"{config.source}: feeds.backoff_max_seconds must be >= feeds.backoff_base_seconds")
    return FetchSettings(**values)
