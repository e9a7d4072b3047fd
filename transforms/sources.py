"""Which source an input file belongs to: a map from path globs to source names (profile ``sources:``).

``SourceMap`` is the picklable path -> name function that :class:`transforms.read.ReadArticleFiles`
calls for each matched file: the first glob that matches the file's path wins; a file no glob
matches gets the default name (``source_name``, ``--source``). Glob syntax: ``*`` and ``?`` stay
within one folder, ``**`` spans folders, ``[abc]`` is a class. A relative local glob is taken
relative to the working directory, as ``--input`` patterns are; ``gs://`` globs match as given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def glob_regex(pattern: str) -> re.Pattern:
    """A regex matching the whole path for a glob with ``**`` (any folders), ``*``, ``?``, ``[...]``."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def absolute(pattern: str) -> str:
    """Local globs relative to the working directory (as ``--input`` is read); URLs unchanged."""
    if "://" in pattern or os.path.isabs(pattern):
        return pattern
    return os.path.join(os.path.abspath("."), pattern)


class SourceMap:
    """``path -> source name``: the first matching glob's name, else ``default``."""

    def __init__(self, globs: Iterable[tuple[str, str]], default: str):
        self.rules = tuple((absolute(pattern), name) for pattern, name in globs)
        self.default = default
        self._compiled = None

    def __call__(self, path: str) -> str:
        if self._compiled is None:  # compiled lazily: also after unpickling on a worker
            self._compiled = [(glob_regex(pattern), name) for pattern, name in self.rules]
        path = absolute(path)  # a relative --input gives relative paths
        for regex, name in self._compiled:
            if regex.match(path):
                return name
        return self.default

    def __getstate__(self):
        return {"rules": self.rules, "default": self.default, "_compiled": None}

    def __repr__(self) -> str:
        return f"SourceMap({list(self.rules)!r}, default={self.default!r})"


def source_for(default: str, globs: Iterable[tuple[str, str]] = ()) -> "str | SourceMap":
    """What ``ReadArticleFiles`` takes: the plain name, or a :class:`SourceMap` when globs are given."""
    globs = tuple(globs)
    return SourceMap(globs, default) if globs else default
