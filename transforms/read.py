"""Step 1: read article text files into parsed items.

Core: ``decode_bytes`` (UTF-8 with or without BOM, else a detected legacy
encoding, else an error) and ``parse_article_text`` (the loose seed layout).
Transform: :class:`ReadArticleFiles` matches file patterns (local: :func:`match_local`,
which drops no matched path; ``gs://``: Beam's ``FileSystems.match``), reads each
matched path and emits one item per path, or a dead letter with the raw bytes and
the reason. Rules for symlinks, directories, FIFOs/devices/sockets and file names
that are not valid UTF-8: :func:`match_local`, :func:`open_local` and
docs/data-safety-inputs.md.

Seed layout, decided on the first line:
  * `` date YYYY-MM-DD <lead text>`` or `` date YYYY-MM <lead text>``: dated lead, no title;
  * a short line without closing sentence punctuation, followed by more text: the title;
  * anything else: plain body text.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import stat
from typing import Any, Callable, Iterable

import apache_beam as beam
import charset_normalizer
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.common import DEAD_LETTER, RunInfo, dead_letter
from transforms.text import normalize_text

_DATE_LINE = re.compile(r"^\s*date\s+(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?(?=\s|$)\s*(?P<rest>.*)$", re.S)
_SENTENCE_END = ("." , "!", "?", "…", ":", ";")
# Share of characters that may be control/replacement characters before text is called binary.
_MAX_NOISE_SHARE = 0.02
# When charset detection cannot tell encodings apart (short texts score alike in all of them), the
# first of these that fits wins: Western European first (WHATWG decodes "latin-1" as windows-1252),
# then the other common legacy code pages. Without this, a short latin-1 file came back as EBCDIC.
PREFERRED_LEGACY_ENCODINGS = ("cp1252", "iso8859_15", "cp1250", "cp1251", "gb18030", "cp932", "cp949", "big5")
# Code pages detection may propose that a news text file is never written in: EBCDIC mainframe pages.
EXCLUDED_ENCODINGS = ("cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class UnreadableInput(ValueError):
    """Bytes that are not text in any encoding we accept."""


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file bytes; returns ``(text, encoding)`` or raises :class:`UnreadableInput`.

    Order: UTF-8 (BOM optional), UTF-16 with BOM, then charset detection among legacy
    encodings; ties between equally plausible encodings go to :data:`PREFERRED_LEGACY_ENCODINGS`.
    """
    if raw.startswith(_UTF16_BOMS):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as err:
            raise UnreadableInput(f"undecodable bytes: UTF-16 byte order mark, but {err.reason}") from err
    if raw.find(b"\x00", 0, 8192) != -1:  # no copy of the first 8 KiB
        raise UnreadableInput("binary content (NUL bytes)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(raw, cp_exclusion=list(EXCLUDED_ENCODINGS)))
    if not matches:
        raise UnreadableInput("undecodable bytes: not UTF-8 and no other encoding fits")
    best = matches[0]
    encoding = best.encoding
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    candidates = {name for m in tied for name in m.could_be_from_charset}
    for preferred in PREFERRED_LEGACY_ENCODINGS:
        if preferred in candidates:
            encoding = preferred
            break
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text, encoding = str(best), best.encoding
    noise = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t"))
    if text and noise / len(text) > _MAX_NOISE_SHARE:
        raise UnreadableInput(f"undecodable bytes: best guess {encoding} leaves {noise} control characters")
    return text, encoding


def _parse_date(year: str, month: str, day: str | None) -> tuple[dt.datetime, str] | None:
    try:
        when = dt.datetime(int(year), int(month), int(day or 1), tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return when, ("day" if day else "month")


def parse_article_text(text: str, max_title_chars: int = 200) -> dict[str, Any]:
    """Split normalized text into title, summary (lead), body and date fields.

    ``body`` is the whole text after the title (the lead included) so that no
    text is lost; ``summary`` is the lead paragraph.
    """
    return _parse_normalized(normalize_text(text), max_title_chars)


def _parse_normalized(text: str, max_title_chars: int) -> dict[str, Any]:
    first, _, rest = text.partition("\n")
    title = None
    published_at = None
    precision = "none"
    date_source = None
    match = _DATE_LINE.match(first)
    if match and (parsed := _parse_date(match["year"], match["month"], match["day"])):
        published_at, precision = parsed
        date_source = "text"
        body = (match["rest"].strip() + "\n" + rest).strip()
    elif (stripped := rest.strip()) and len(first) <= max_title_chars and not first.rstrip().endswith(_SENTENCE_END):
        title = first.strip()
        body = stripped
    else:
        body = text
    line_end = body.find("\n")  # the first line, without splitting off (copying) the rest
    summary = body[:line_end].strip() if line_end != -1 else None
    return {
        "title": title,
        "summary": summary,
        "body": body,
        "published_at": published_at,
        "date_precision": precision,
        "date_source": date_source,
    }


def file_to_item(raw: bytes, path: str, source: str, max_title_chars: int) -> dict[str, Any]:
    """Bytes of one file -> parsed item (see ``parse_article_text``); raises UnreadableInput."""
    text, encoding = decode_bytes(raw)
    text = normalize_text(text)  # once: parsing works on the normalized text
    if not text:
        raise UnreadableInput("empty file: no text")
    item = _parse_normalized(text, max_title_chars)
    # title, summary and body are pieces of the normalized text cut at line ends: normalize_text leaves
    # them as they are, and to_article need not run it again (tests/test_normalize_equivalence.py checks this).
    item.update({"source": source, "origin": path, "url": None, "guid": None, "encoding": encoding,
                 "text_normalized": True})
    return item


# -- matching: every path a pattern matches, none dropped ------------------------

_GLOB_CHARS = re.compile(r"[*?\[]")
# A glob character made literal the way glob.escape does it: [*], [?], [[].
_ESCAPED = re.compile(r"\[([*?\[])\]")


def glob_regex(pattern: str) -> re.Pattern:
    """The regular expression of a local file pattern.

    Beam's pattern syntax with POSIX semantics for single names: ``*`` is any run of
    characters but ``/`` (Beam's also stops at a backslash, which hid names with backslashes),
    ``?`` one character but ``/``, ``[...]`` a character class (``[!...]`` negated),
    ``**`` any characters including ``/`` (any depth). There is no escape character:
    ``glob.escape`` (``[*]``) makes a glob character literal.
    """
    i, n, out = 0, len(pattern), []
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                out.append(".*")
                i += 1
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
                continue
            stuff = pattern[i:j]
            i = j + 1
            negate = stuff.startswith("!")
            if negate:
                stuff = stuff[1:]
            stuff = re.sub(r"([\\\[\]^&~|])", r"\\\1", stuff)
            out.append(f"[^/{stuff}]" if negate else f"(?!/)[{stuff}]")
        else:
            out.append(re.escape(c))
    return re.compile("(?s:" + "".join(out) + r")\Z")


def _base_dir(pattern: str) -> str:
    """The directory a pattern's matches are listed from: the one holding its first glob character."""
    return os.path.dirname(_GLOB_CHARS.split(pattern, 1)[0])


def _list_below(base: str, max_depth: float) -> tuple[list[tuple[str, bool]], list[str]]:
    """``([(path, is_directory)], [unlistable directories])`` for every entry at most
    ``max_depth`` levels below ``base``. Symbolic links are listed, never followed (no
    loops); a directory below ``base`` that cannot be listed is reported, not skipped."""
    entries: list[tuple[str, bool]] = []
    unlistable: list[str] = []
    stack = [(base, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder or ".") as listing:
                found = [(os.path.join(folder, e.name), e.is_dir(follow_symlinks=False)) for e in listing]
        except OSError:
            if depth == 0:
                raise
            unlistable.append(folder)
            continue
        entries.extend(found)
        if depth + 1 < max_depth:
            stack.extend((path, depth + 1) for path, is_dir in found if is_dir)
    return entries, unlistable


def match_local(pattern: str) -> list[str]:
    """Every local path ``pattern`` matches, sorted; nothing that matches is left out.

    Unlike Beam's local match (which drops dangling and looping symlinks, directories
    and names with a backslash without a word), every entry whose path matches is
    returned, whatever it is: regular file, symlink (dangling, looping or not),
    directory, FIFO, socket or device. The read step decides what each one becomes.
    Exceptions: directories matched by a pattern ending in ``**`` are traversed, not
    returned (``inbox/**`` means the files below ``inbox``), and a directory that cannot
    be listed is returned when it could hold matches (its contents are unknown).
    A pattern without glob characters names one path: returned if it exists at all
    (``os.path.lexists``: a dangling symlink exists). A pattern ending in ``/`` means
    the entries of that directory, as in Beam.
    """
    if pattern.endswith("/"):
        pattern += "*"
    literal = _ESCAPED.sub(r"\1", pattern)  # glob.escape'd path (the chunk split's patterns)
    if not _GLOB_CHARS.search(literal):
        return [literal] if os.path.lexists(literal) else []
    base = _base_dir(pattern)
    if base and not os.path.isdir(base):
        return []
    rest = pattern[len(base):].lstrip("/")
    max_depth = float("inf") if "**" in rest else rest.count("/") + 1
    regex = glob_regex(pattern)
    entries, unlistable = _list_below(base, max_depth)
    containers = pattern.endswith("**")
    matched = [path for path, is_dir in entries if regex.match(path) and not (is_dir and containers)]
    return sorted({*matched, *unlistable})


def match_pattern(pattern: str) -> list[str]:
    """Paths ``pattern`` matches: :func:`match_local` for local patterns, Beam's
    ``FileSystems.match`` for remote ones (``gs://``: objects, no symlinks or FIFOs)."""
    if "://" in pattern:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    return match_local(pattern)


def match_patterns(patterns: Iterable[str]) -> list[str]:
    """Every path the patterns match, sorted; a path matched by two patterns is listed twice
    (it is read twice, and its second copy is a duplicate)."""
    return sorted(path for pattern in patterns for path in match_pattern(pattern))


def display_path(path: str) -> str:
    """``path`` as valid UTF-8 text for the ``origin`` column: a name that is not valid UTF-8
    (``os.fsdecode`` keeps its bytes as surrogates) gets those bytes escaped as ``\\xNN``."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


class NotAFile(Exception):
    """A matched path that names no regular file; the message says what it is instead."""


def open_local(path: str) -> tuple[int, int]:
    """Open a matched local path for reading; returns ``(file descriptor, size)``.

    Symlink rule: a symlink is followed when it resolves to a regular file (the article's
    ``origin`` stays the link's path); a dangling or looping symlink, or one to anything
    else, raises :class:`NotAFile`. Directories, FIFOs, sockets and devices raise
    :class:`NotAFile` without being opened for reading. The check is made on the opened
    descriptor too (``O_NONBLOCK``, so a FIFO swapped in after the check cannot block):
    a FIFO never hangs the run.
    """
    try:
        link = os.lstat(path)
    except FileNotFoundError as err:
        raise NotAFile("vanished: the path no longer exists") from err
    via = ""
    if stat.S_ISLNK(link.st_mode):
        target = os.readlink(path)
        try:
            info = os.stat(path)
        except FileNotFoundError as err:
            raise NotAFile(f"dangling symlink: its target {display_path(target)!r} does not exist") from err
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise NotAFile(f"symlink loop: following {display_path(target)!r} never reaches a file") from err
            raise
        via = f"symlink to {display_path(target)!r}, "
    else:
        info = link
    if not stat.S_ISREG(info.st_mode):
        raise NotAFile(f"not a regular file: {via}{_file_kind(info.st_mode)}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise NotAFile(f"not a regular file: {via}{_file_kind(opened.st_mode)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, opened.st_size


def read_fd(fd: int, limit: int, size: int = 0) -> bytes:
    """The bytes of ``fd`` up to its end, at most ``limit`` of them; closes ``fd``.

    ``size`` (from ``fstat``) sizes the first read, one byte past it so a file that grew shows;
    the reads go on until the end (or ``limit``), so a file that grew or shrank while it was read
    gives what it held. Plain ``os.read`` calls: a buffered reader asked for ``limit`` bytes
    allocates ``limit`` bytes first (~45 µs a file with the 5 MB limit, against ~13 µs).
    """
    parts = []
    remaining = limit
    request = min(limit, max(size, 0) + 1)
    try:
        while remaining > 0:
            part = os.read(fd, min(request, remaining))
            if not part:
                break
            parts.append(part)
            remaining -= len(part)
            request = 1 << 20
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


# Matched paths per element between match and read: few elements through the runner, enough of them
# to spread the reading over the workers.
PATHS_PER_BATCH = 100


class _MatchFn(beam.DoFn):
    """All patterns (as bytes: local names need not be UTF-8) -> ``(batch number, [(path as bytes,
    size or None), ...])`` with at most ``batch_size`` matched paths per batch, in match order
    (local sizes are taken when the file is opened). The numbers key the redistribution that follows."""

    def __init__(self, batch_size: int = PATHS_PER_BATCH):
        self._batch_size = batch_size

    def process(self, patterns: list[bytes]) -> Iterable[tuple[int, list[tuple[bytes, int | None]]]]:
        batch: list[tuple[bytes, int | None]] = []
        number = 0
        for pattern in patterns:
            for matched in self._match(os.fsdecode(pattern)):
                batch.append(matched)
                if len(batch) == self._batch_size:
                    yield number, batch
                    batch, number = [], number + 1
        if batch:
            yield number, batch

    @staticmethod
    def _match(pattern: str) -> Iterable[tuple[bytes, int | None]]:
        if "://" in pattern:
            for m in FileSystems.match([pattern])[0].metadata_list:
                yield os.fsencode(m.path), m.size_in_bytes
        else:
            for path in match_local(pattern):
                yield os.fsencode(path), None


class _ReadFileFn(beam.DoFn):
    """A matched path -> exactly one output: an item, or a dead letter with the reason."""

    def __init__(self, source: str | Callable[[str], str], run: RunInfo, max_bytes: int, payload_cap: int,
                 max_title_chars: int):
        self._source = source  # a name, or a function path -> name (transforms.sources.SourceMap)
        self._run = run
        self._max_bytes = max_bytes
        self._payload_cap = payload_cap
        self._max_title_chars = max_title_chars

    def _source_of(self, path: str) -> str:
        return self._source(path) if callable(self._source) else self._source

    def _dead(self, path: str, stage: str, error: str, raw: bytes | None, size: int | None = None):
        return beam.pvalue.TaggedOutput(
            DEAD_LETTER,
            dead_letter(source=self._source_of(path), origin=path, stage=stage, error=error, raw=raw,
                        run=self._run, payload_cap=self._payload_cap, raw_size=size),
        )

    def _read(self, path: str, size: int | None) -> tuple[bytes, int | None]:
        if "://" in path:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                return handle.read(self._max_bytes + 1), size
        fd, size = open_local(path)
        return read_fd(fd, self._max_bytes + 1, size), size

    def process(self, matched: tuple[bytes, int | None]) -> Iterable[Any]:
        encoded, size = matched
        path = os.fsdecode(encoded)
        origin = display_path(path)
        try:
            raw, size = self._read(path, size)
        except NotAFile as err:
            yield self._dead(origin, "read", str(err), None)
            return
        except Exception as err:  # unreadable file: permissions, vanished, I/O error
            yield self._dead(origin, "read", f"cannot read file: {type(err).__name__}: {err}", None, size)
            return
        size = max(size or 0, len(raw))
        if len(raw) > self._max_bytes:
            yield self._dead(origin, "read", f"file too large: {size} bytes > limit {self._max_bytes}", raw, size)
            return
        if origin != path:
            yield self._dead(origin, "read", f"file name is not valid UTF-8: {encoded!r} (origin has its bytes "
                             "escaped as \\xNN; the file's content is in raw); rename it to read it", raw, size)
            return
        try:
            yield file_to_item(raw, path, self._source_of(path), self._max_title_chars)
        except UnreadableInput as err:
            yield self._dead(path, "parse", str(err), raw, size)


class ReadArticleFiles(beam.PTransform):
    """Read text files matching ``patterns``; returns ``{'items', 'dead_letter', 'matched'}``.

    Every matched path (see :func:`match_local`) yields exactly one output: an item or a
    dead letter. ``matched`` holds the matched paths as lists (batches of at most
    :data:`PATHS_PER_BATCH`), for the ``inputs`` counter: count the elements of its lists.
    The batches are redistributed (a GroupByKey on the batch number) before reading, so the
    read and everything fused after it run on every worker, also when one glob matches all files.
    """

    def __init__(self, patterns: list[str], source: str | Callable[[str], str], run: RunInfo, *, max_bytes: int,
                 payload_cap: int, max_title_chars: int, batch_size: int = PATHS_PER_BATCH):
        super().__init__()
        self._patterns = [os.fsencode(p) for p in patterns]
        self._fn = _ReadFileFn(source, run, max_bytes, payload_cap, max_title_chars)
        self._batch_size = batch_size

    def expand(self, pbegin):
        batches = (
            pbegin
            | "Patterns" >> beam.Create([self._patterns])
            | "Match" >> beam.ParDo(_MatchFn(self._batch_size))
        )
        paths = (
            batches
            | "Distribute" >> beam.GroupByKey()
            | "Paths" >> beam.FlatMap(lambda keyed: (path for batch in keyed[1] for path in batch))
        )
        results = paths | "Parse" >> beam.ParDo(self._fn).with_outputs(DEAD_LETTER, main="items")
        matched = batches | "MatchedLists" >> beam.Values()
        return {"items": results.items, DEAD_LETTER: results[DEAD_LETTER], "matched": matched}
