"""URLs of feed entries: which link is the article's, and its canonical form.

Pure functions, no Beam.

* ``web_link(value)``: the value when it is an absolute http(s) URL, else None (``javascript:``,
  ``data:``, ``mailto:``, relative or empty values are never an article URL).
* ``canonicalize_url(url)``: scheme and host lower-cased, default port, ``.``/``..`` path segments
  and the fragment removed, tracking parameters removed, the remaining query pairs sorted. The
  path and the query values are kept byte for byte otherwise: ``//`` and ``https://`` inside a
  path or a value stay as they are (the previous url-normalize based version collapsed them).

Tracking parameters: ``TRACKING_PARAMS`` / ``TRACKING_PREFIXES`` apply to every host,
``HOST_TRACKING_PARAMS`` only to the named sites and their subdomains, in the spirit of the
ClearURLs rules that browser extensions and ad-blockers maintain (global + per-provider rules).
courlan's tracker filter was measured on the same URLs (tests/test_feeds_urls.py, docs/feeds.md):
it misses NYT's ``emc``/``partner`` and the Guardian's ``CMP`` and removes page-selecting
parameters whose name merely contains ``ga``, ``gl``, ``source`` or ``ref`` (``gallery``,
``global``), so it is not used for identity.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset({
    # click ids of ad networks and social sites
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "ttclid", "twclid",
    "li_fat_id", "epik", "s_cid", "ocid", "icid", "ncid",
    # mail and marketing automation
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id",
    "__s", "sr_share", "soc_src", "soc_trk",
    # analytics suites: Google, Webtrekk/Mapp (heise, Spiegel, Zeit), AT Internet (Le Monde, France TV), comScore
    "_ga", "_gl", "ref_src", "cmpid", "wt_mc", "wt_zmc", "wt_cc1", "xtor", "xts", "ito", "ns_mchannel",
    "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "__twitter_impression", "rss_source",
})
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_", "ga_")
HOST_TRACKING_PARAMS = {
    "nytimes.com": frozenset({"emc", "partner", "smid", "smtyp", "ref", "action", "module", "pgtype", "region",
                              "src"}),
    "theguardian.com": frozenset({"cmp"}),
    "washingtonpost.com": frozenset({"itid", "wpisrc", "wpmk"}),
    "bbc.co.uk": frozenset({"ocid", "ns_mchannel"}),
    "bbc.com": frozenset({"ocid", "ns_mchannel"}),
    "faz.net": frozenset({"premium", "ftag"}),
    "sueddeutsche.de": frozenset({"reduced"}),
    "feedburner.com": frozenset(),
}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Characters kept as they are when percent-encoding stray characters (spaces, non-ASCII).
_SAFE = "/:@!$&'()*+,;=-._~%?#[]"


def web_link(value: str | None) -> str | None:
    """``value`` stripped when it is an absolute http(s) URL with a host, else None."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def _host_rules(host: str) -> frozenset[str]:
    rules: set[str] = set()
    for domain, params in HOST_TRACKING_PARAMS.items():
        if host == domain or host.endswith("." + domain):
            rules.update(params)
    return frozenset(rules)


def is_tracking_param(name: str, host: str = "") -> bool:
    key = name.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES) or key in _host_rules(host)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, on the raw path (``//`` kept)."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
            continue
        if segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
            continue
        output.append(segment)
    return "/".join(output)


def canonicalize_url(url: str | None) -> str | None:
    """Canonical form of ``url`` (see module docstring); None when empty; non-http(s) values stripped only."""
    if not url or not url.strip():
        return None
    text = quote(url.strip(), safe=_SAFE)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return text
    host = parts.hostname.lower().rstrip(".")
    if parts.username or parts.password:
        host = parts.netloc.rsplit("@", 1)[0] + "@" + host
    if port is not None and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = _remove_dot_segments(parts.path) or "/"
    pairs = [pair for pair in parts.query.split("&") if pair]
    kept = sorted(pair for pair in pairs if not is_tracking_param(pair.split("=", 1)[0], parts.hostname.lower()))
    return urlunsplit((scheme, host, path, "&".join(kept), ""))
