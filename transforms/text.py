"""Shared text helpers (below every step): the normalized text and the dedup content key.

``normalize_text`` (NFC, no control characters, whitespace) is applied by read and
normalize; ``content_key`` (case-folded words of title and body) is what exact and
near dedup compare and what MinHash signs. They live here so that read, normalize
and dedupe import them without importing each other.
"""

from __future__ import annotations

import re
import unicodedata

_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# C0/C1 control characters except newline and tab, and Unicode format marks such as BOM / zero-width.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff]")
_WORD = re.compile(r"\w+", re.UNICODE)
# content_key's fast path. Every ASCII byte that is not a word character (\w) becomes a space
# (in UTF-8 an ASCII byte is always a whole character); other bytes are kept.
_ASCII_NON_WORD_TO_SPACE = bytes(c if c >= 128 or _WORD.fullmatch(chr(c)) else 32 for c in range(256))
# Frequent non-ASCII non-word characters of news text (quotes, dashes, ellipsis, no-break space).
_NON_ASCII_SEPARATORS = "\u2013\u2019\u201d\u201c\u00bb\u00ab\u201e\u2014\u2018\u2026\u201a\u00b7\u00a0"


def normalize_text(text: str | None) -> str:
    """NFC, no control characters, single spaces, stripped lines, at most one blank line in a row."""
    if not text:
        return ""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    lines = text.split("\n")
    if all(map(str.isprintable, lines)):
        # Most texts. Every character _CONTROL removes is unprintable, and so is every whitespace
        # character but the space (tab, no-break and other Unicode spaces, line separators): nothing
        # to remove, and a line without a double space or a space at either end is what the
        # split/join below makes of it. Only the other lines are rebuilt (reading a bench article:
        # normalize_text 97-100 -> 50-53 µs).
        changed = False
        for i, line in enumerate(lines):
            if line[:1] == " " or line[-1:] == " " or "  " in line:
                lines[i] = " ".join(line.split())
                changed = True
        if changed:
            text = "\n".join(lines)
    else:
        text = _CONTROL.sub("", text)
        # str.split() splits on exactly the characters of the regex class \s: per line this collapses
        # every run of horizontal whitespace to one space and strips the line, 2x faster than a regex.
        text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


def content_key(title: str | None, body: str | None) -> str:
    r"""Case-folded words of title and body: what 'the same text' means for dedup.

    By definition ``" ".join(re.findall(r"\w+", f"{title}\n{body}".casefold()))``; computed by
    :func:`content_key_words`.
    """
    return content_key_words(title, body)[0]


def content_key_words(title: str | None, body: str | None) -> tuple[str, list[bytes]]:
    r"""``content_key(title, body)`` and its words in UTF-8 (``key.encode("utf-8").split()``), which
    MinHash signs: the key's words are found once.

    Computed as: replace known non-word characters by spaces (ASCII ones through a byte table on the
    UTF-8 bytes, a few frequent non-ASCII ones with str.replace), split on whitespace, join with
    single spaces; that is the definition whenever every remaining character is a word character
    (isalnum() or "_", which is exactly re's \w), else the regex runs (same result, 2x slower).
    tests/test_content_key_equivalence.py compares both with the regex on random and real text.
    """
    text = f"{title or ''}\n{body or ''}".casefold()
    if not text.isascii():
        for separator in _NON_ASCII_SEPARATORS:
            text = text.replace(separator, " ")
    words = text.encode("utf-8", "surrogatepass").translate(_ASCII_NON_WORD_TO_SPACE).split()
    key = b" ".join(words).decode("utf-8", "surrogatepass")  # a lone surrogate (not \w) takes the regex path
    if key.isascii():
        return key, words
    check = key.replace(" ", "a")  # 1:1 replacements are the fast ones
    if check.isalnum() or check.replace("_", "a").isalnum():
        return key, words
    key = " ".join(_WORD.findall(text))
    return key, key.encode("utf-8").split()
