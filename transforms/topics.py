"""Step 5: label topics from the taxonomy in ``configs/topics.yaml``.

Core: :func:`load_taxonomy` validates the YAML into plain data,
:class:`CompiledTaxonomy` compiles it once per worker (one matcher per label, kind
and language), and :meth:`CompiledTaxonomy.label` scores an article. A matcher finds
exactly what one alternation regex of its terms would (``_Matcher.find_regex``), but
looks terms up by the first letters of the text's words and runs a term's own regex
only where it can start (``_Matcher.find``): most articles match nothing, cheaply.

Term syntax (case-insensitive, always on word boundaries, so "nato" never
matches inside "Senatoren"):
  * ``*`` is any run of letters or digits: ``sanktion*`` matches "Sanktionen"
    and "Sanktionspaket"; a *leading* ``*`` lets the term start inside a word, so
    ``*sanktion*`` finds "Wirtschaftssanktionen" (evidence covers the whole word);
  * ``#`` is a number (``3,5``, ``2.5``, ``5``);
  * a space matches spaces, hyphens or nothing ("zwei prozent ziel" matches
    "Zwei-Prozent-Ziel" and "Zweiprozentziel");
  * ``ß`` also matches "ss", ``'`` also matches "’", Romanian ``ș``/``ț`` also match ``ş``/``ţ``;
  * a leading ``=`` makes the term case-sensitive: ``=UN`` and ``=US`` are the organisation and the
    country, never the French/Spanish/Romanian article "un" or the English pronoun "us".

Scoring of a label over the title, the lead (first ``lead_chars`` of the body)
and the rest of the body:
  * each surviving ``terms`` match adds ``weight x field weight``; a term counts
    at most ``max_term_repeats`` times (how often, with diminishing returns);
  * each ``combos`` rule adds its weight when one match of every group lies
    within ``window`` characters in the same field (descriptions without a name);
    with ``same_sentence`` no sentence end (". ", "! ", "? ", a line break) may lie
    between them, and a ``not_near`` term within ``window`` of the match drops it;
  * ``veto`` rules cancel the positive matches that have a veto term within
    ``before``/``after`` characters (no window: the whole label is cancelled);
    a rule may look only at some ``fields`` (``[title]``: the subject of the
    article), is skipped when one of its ``unless`` terms occurs there, and with
    ``cancel: label`` one vetoed match cancels the whole label;
  * ``context`` terms add their (usually negative) weight;
  * the label is assigned when the score reaches ``threshold`` and every
    ``requires`` group matched (anywhere, or within ``window`` of a positive match);
    a group with ``satisfied_by`` (combo names) also counts as matched when one of
    those combos has a match that survived the vetoes, and a group with ``satisfied_in``
    (``languages``, ``owners``, ``unless`` and ``positive_with`` terms) when the article's
    language is one of ``languages`` or an ``owners`` term occurs anywhere, a surviving
    positive match contains a ``positive_with`` term, and no ``unless`` term occurs anywhere
    in title or body.
Per language the matcher uses that language's lists, the ``any`` lists and the
lists of ``language_fallbacks``; an unknown or ``und`` language uses all lists.
Adding a label is a YAML change only.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any, Iterable, Mapping

import apache_beam as beam

from schemas.config import ConfigError, Validator, load_yaml, resolve_config_path

try:  # the C core of text analysis and the automaton pass (setup.py); without it the same answers, slower
    from transforms import _topics_scan as _scan_c
except ImportError:  # no C compiler at install
    _scan_c = None

ANY_LANGUAGE = "any"
# Topics read at most this many characters of a field (title, body): a 5 MB page costs what 20 kB do.
DEFAULT_MAX_CHARS = 20_000
# ISO 639-1 codes: a term list under any other key ("ua", "cz", "gr") is a typo and is rejected.
ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik
io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
vo wa wo xh yi yo za zh zu""".split())
FIELDS = ("title", "lead", "body")
# satisfied_in.owner_not_near: a comparison this close to a member's name makes it a yardstick, not the owner.
OWNER_NOT_NEAR_CHARS = 60
_TERM_OK = re.compile(r"=?[\w*#%'’.,&+/\s\-]+")


# -- loading and validation ---------------------------------------------------

def _validate_term_lists(v: Validator, value: Any, path: str, allow_negative: bool = False
                         ) -> dict[str, list[dict[str, Any]]]:
    """``{lang: [pattern | {pattern, weight}]}`` -> ``{lang: [{pattern, weight}]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lang, terms in v.mapping(value, path).items():
        if str(lang) != ANY_LANGUAGE and str(lang) not in ISO_639_1:
            v.fail(f"{path}.{lang}", f"unknown language code {lang!r}: language keys are ISO 639-1 codes "
                                     "(de, en, fr, uk, cs, ...) or 'any'")
        if not isinstance(terms, list) or not terms:
            v.fail(f"{path}.{lang}", "expected a non-empty list of terms")
        parsed = []
        for i, term in enumerate(terms):
            where = f"{path}.{lang}[{i}]"
            if isinstance(term, str):
                term = {"pattern": term}
            term = v.mapping(term, where, {"pattern", "weight"})
            pattern = v.string(term.get("pattern"), f"{where}.pattern").strip()
            # "=UN": matched with exactly this case (the pronoun "un"/"us" is no state actor).
            pattern = pattern if pattern.startswith("=") else pattern.lower()
            if not _TERM_OK.fullmatch(pattern):
                v.fail(f"{where}.pattern", f"{pattern!r} has characters terms cannot use; allowed: letters, "
                                           "digits, spaces, * # % ' - . , & + / (and a leading = for "
                                           "case-sensitive terms)")
            if not re.search(r"\w", pattern.replace("*", "")) and "#" not in pattern:
                v.fail(f"{where}.pattern", f"{pattern!r} must contain at least one letter or digit")
            weight = v.number(term.get("weight", 1.0), f"{where}.weight")
            if weight < 0 and not allow_negative:
                v.fail(f"{where}.weight", "only context terms may have a negative weight")
            parsed.append({"pattern": pattern, "weight": float(weight)})
        out[str(lang)] = parsed
    return out


def _window(v: Validator, value: Any, path: str) -> int | None:
    return None if value is None else v.integer(value, path, 0)


def _validate_label(v: Validator, name: str, spec: Any) -> dict[str, Any]:
    path = f"labels.{name}"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
        v.fail(path, "label names are lower_snake_case")
    spec = v.mapping(spec, path, {"description", "threshold", "terms", "combos", "context", "veto", "requires"})
    label = {
        "description": " ".join(v.string(spec.get("description"), f"{path}.description").split()),
        "threshold": float(v.number(spec.get("threshold"), f"{path}.threshold", 0)),
        "terms": _validate_term_lists(v, spec.get("terms"), f"{path}.terms"),
        "context": _validate_term_lists(v, spec["context"], f"{path}.context", allow_negative=True)
        if spec.get("context") is not None else {},
        "combos": [],
        "veto": [],
        "requires": [],
    }
    if label["threshold"] <= 0:
        v.fail(f"{path}.threshold", "must be > 0, or every article would get the label")
    for i, combo in enumerate(spec.get("combos") or []):
        cpath = f"{path}.combos[{i}]"
        combo = v.mapping(combo, cpath, {"name", "weight", "window", "groups", "same_sentence", "not_near"})
        groups = combo.get("groups")
        if not isinstance(groups, list) or len(groups) < 2:
            v.fail(f"{cpath}.groups", "expected a list of at least two term groups")
        label["combos"].append({
            "name": v.string(combo.get("name"), f"{cpath}.name"),
            "weight": float(v.number(combo.get("weight"), f"{cpath}.weight", 0)),
            "window": v.integer(combo.get("window"), f"{cpath}.window", 1),
            "groups": [_validate_term_lists(v, g, f"{cpath}.groups[{j}]") for j, g in enumerate(groups)],
            "same_sentence": v.boolean(combo.get("same_sentence", False), f"{cpath}.same_sentence"),
            "not_near": (_validate_term_lists(v, combo["not_near"], f"{cpath}.not_near")
                         if combo.get("not_near") is not None else None),
        })
    veto = spec.get("veto")
    if isinstance(veto, Mapping):  # shorthand: term lists that cancel the whole label
        veto = [{"name": "veto", "terms": veto}]
    if veto is not None and not isinstance(veto, list):
        v.fail(f"{path}.veto", "expected a list of veto rules (or term lists per language)")
    for i, rule in enumerate(veto or []):
        rpath = f"{path}.veto[{i}]"
        rule = v.mapping(rule, rpath, {"name", "before", "after", "window", "fields", "unless", "cancel", "terms"})
        window = _window(v, rule.get("window"), f"{rpath}.window")
        before = _window(v, rule.get("before", window), f"{rpath}.before")
        after = _window(v, rule.get("after", window), f"{rpath}.after")
        if (before is None) != (after is None):
            v.fail(rpath, "give both before and after (or window), or neither (= whole article)")
        fields = rule.get("fields", ["title", "body"])
        if not isinstance(fields, list) or not fields or any(f not in ("title", "body") for f in fields):
            v.fail(f"{rpath}.fields", f"expected a non-empty list of 'title' and/or 'body', got {fields!r}")
        label["veto"].append({
            "name": v.string(rule.get("name"), f"{rpath}.name"),
            "before": before, "after": after, "fields": list(fields),
            "cancel": v.string(rule.get("cancel", "match"), f"{rpath}.cancel", ("match", "label")),
            "terms": _validate_term_lists(v, rule.get("terms"), f"{rpath}.terms"),
            "unless": _validate_term_lists(v, rule["unless"], f"{rpath}.unless") if rule.get("unless") else {},
        })
    combo_names = {c["name"] for c in label["combos"]}
    for i, group in enumerate(spec.get("requires") or []):
        gpath = f"{path}.requires[{i}]"
        group = v.mapping(group, gpath, {"name", "window", "terms", "satisfied_by", "satisfied_in"})
        satisfied_by = v.string_list(group.get("satisfied_by", []), f"{gpath}.satisfied_by")
        satisfied_in = None
        if group.get("satisfied_in") is not None:
            ipath = f"{gpath}.satisfied_in"
            spec_in = v.mapping(group["satisfied_in"], ipath,
                                {"languages", "owners", "owner_not_near", "unless", "positive_with"})
            languages = v.string_list(spec_in.get("languages", []), f"{ipath}.languages")
            if not languages and spec_in.get("owners") is None:
                v.fail(f"{ipath}.languages", "expected a non-empty list of ISO 639-1 codes (or owners)")
            for code in languages:
                if code not in ISO_639_1:
                    v.fail(f"{ipath}.languages", f"unknown language code {code!r} (ISO 639-1 codes only)")
            if spec_in.get("unless") is None:
                v.fail(f"{ipath}.unless", "expected term lists naming other owners (the rule needs its exceptions)")
            satisfied_in = {"languages": languages, **{
                key: _validate_term_lists(v, spec_in[key], f"{ipath}.{key}") if spec_in.get(key) is not None else None
                for key in ("owners", "owner_not_near", "unless", "positive_with")}}
        for combo in satisfied_by:
            if combo not in combo_names:
                v.fail(f"{gpath}.satisfied_by", f"{combo!r} is not a combo of this label "
                                                f"(combos: {', '.join(sorted(combo_names)) or 'none'})")
        label["requires"].append({
            "name": v.string(group.get("name"), f"{gpath}.name"),
            "window": _window(v, group.get("window"), f"{gpath}.window"),
            "terms": _validate_term_lists(v, group.get("terms"), f"{gpath}.terms"),
            "satisfied_by": satisfied_by,
            "satisfied_in": satisfied_in,
        })
    return label


def validate_taxonomy(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    v = Validator(source)
    v.mapping(data, "taxonomy", {"version", "field_weights", "lead_chars", "max_chars", "max_term_repeats",
                                 "language_fallbacks", "labels"})
    version = v.string(str(data["version"]) if data.get("version") is not None else None, "version")
    weights = v.mapping(data.get("field_weights", {}), "field_weights", set(FIELDS))
    defaults = {"title": 2.0, "lead": 1.5, "body": 1.0}
    for key in FIELDS:
        v.number(weights.get(key, defaults[key]), f"field_weights.{key}", 0)
    lead_chars = v.integer(data.get("lead_chars", 400), "lead_chars", 0)
    max_chars = v.integer(data.get("max_chars", DEFAULT_MAX_CHARS), "max_chars", 1)
    max_repeats = v.integer(data.get("max_term_repeats", 3), "max_term_repeats", 1)
    fallbacks = v.mapping(data.get("language_fallbacks", {}), "language_fallbacks")
    fallbacks = {str(k): v.string_list(val, f"language_fallbacks.{k}") for k, val in fallbacks.items()}
    for lang, targets in fallbacks.items():
        for code in [lang, *targets]:
            if code not in ISO_639_1:
                v.fail(f"language_fallbacks.{lang}", f"unknown language code {code!r} (ISO 639-1 codes only)")
    labels_in = v.mapping(data.get("labels"), "labels")
    if not labels_in:
        v.fail("labels", "at least one label is required")
    labels = {str(name): _validate_label(v, str(name), spec) for name, spec in labels_in.items()}
    return {
        "version": version,
        "field_weights": {k: float(weights.get(k, defaults[k])) for k in FIELDS},
        "lead_chars": lead_chars,
        "max_chars": max_chars,
        "max_term_repeats": max_repeats,
        "language_fallbacks": fallbacks,
        "labels": labels,
    }


def load_taxonomy(path: str) -> dict[str, Any]:
    """Read and validate a taxonomy file into plain (picklable) data."""
    return validate_taxonomy(load_yaml(path), resolve_config_path(path))


# -- compiling and matching ---------------------------------------------------

_SPACE = r"[\s\u00a0\u202f\-\u2010\u2011\u2013]*"
_NUMBER = r"\d+(?:[.,]\d+)?"
_WORD_START = r"(?<!\w)"


def term_regex(pattern: str) -> str:
    """Regex source for one term (see the module docstring for the syntax)."""
    if pattern.startswith("="):  # case-sensitive: a scoped flag keeps it so inside an IGNORECASE alternation
        return "(?-i:" + term_regex(pattern[1:]) + ")"
    leading_wildcard = pattern.startswith("*")
    body = pattern[1:] if leading_wildcard else pattern
    parts = []
    for token in re.split(r"(\*|#|\s+)", body):
        if token == "*":
            parts.append(r"\w*")
        elif token == "#":
            parts.append(_NUMBER)
        elif token and token.isspace():
            parts.append(_SPACE)
        elif token:
            for ch in token:
                if ch == "ß":
                    parts.append("(?:ß|ss)")
                elif ch in _COMMA_BELOW:  # Romanian: comma-below and the older cedilla spellings
                    parts.append(_COMMA_BELOW[ch])
                elif ch in "'’":
                    parts.append("['’]")
                else:
                    parts.append(re.escape(ch))
    start = "" if leading_wildcard else _WORD_START
    return start + "".join(parts) + r"(?!\w)"


_SEGMENT = re.compile(r"[^\Wß]+")  # a run of literal word characters in a term (ß may match "ss")


@functools.lru_cache(maxsize=None)
def _term_rx(pattern: str) -> re.Pattern:
    return re.compile(term_regex(pattern), re.IGNORECASE)


def _alphabet(patterns: Iterable[str]) -> str:
    return "".join(sorted(set("".join(_SEGMENT.findall(" ".join(patterns).lower())))))


@functools.lru_cache(maxsize=8)
def case_exceptions(alphabet: str) -> dict[str, str | None]:
    """Characters for which ``str.lower()`` is not what ``re.IGNORECASE`` matches, for ``alphabet``.

    The lookup path compares ``str.lower()`` of the text with the terms' letters. That is exact
    except for a character that matches one of ``alphabet`` under ``re.IGNORECASE`` but does not
    lower-case to it ("ı" and "İ" match "i", "ſ" matches "s"): such a character maps to the one
    letter it matches (the text is translated first), or to None when there is no single letter
    (it matches several, is no word character, or lower-cases by context like "Σ"); a text with
    one of those takes the plain regex path. Asks the regex engine itself, over every code point.
    """
    alphabet = "".join(sorted(set(alphabet)))
    if not alphabet:
        return {}
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    candidates = set(re.findall("[" + "".join(re.escape(c) for c in alphabet) + "]", everything, re.IGNORECASE))
    singles = [(c, re.compile(re.escape(c), re.IGNORECASE)) for c in alphabet]
    exceptions: dict[str, str | None] = {}
    for ch in sorted(candidates):
        matched = [c for c, rx in singles if rx.fullmatch(ch)]
        if ch != "\u03a3" and (ch.isalnum() or ch == "_") and all(ch.lower() == c for c in matched):
            continue
        word = ch != "\u03a3" and (ch.isalnum() or ch == "_")
        exceptions[ch] = matched[0] if word and len(matched) == 1 else None
    return exceptions


# Lower-casing a field into one byte per character: a Latin-1 character becomes its lower case (always one
# Latin-1 character), any other character "?", which no automaton key holds. For a text without the
# characters below this is exactly ``text.lower().encode("latin-1", "replace")``, at a third of the cost of
# ``str.lower`` (German news: "–", "„" and "“" make most articles two bytes per character in CPython).
_LATIN1_LOWER = bytes(ord(chr(b).lower()) for b in range(256))
# The characters whose lower case is not one character outside Latin-1 (and for which the bytes above would
# differ from lower-casing): "İ" lowers to two characters, the others to a Latin-1 letter. A text with one
# takes ``str.lower`` (tests/test_topics.py derives this set from every code point).
_LOWER_SPECIAL = "\u0130\u0178\u1e9e\u212a\u212b"  # İ Ÿ ẞ K (Kelvin) Å (Angstrom)


def _has_any(text: str, characters: str) -> bool:
    """True when ``text`` holds one of ``characters`` (one C substring scan each: a few are cheaper so
    than one regex class scan)."""
    for ch in characters:
        if ch in text:
            return True
    return False


def _flags(exceptions: Iterable[str]) -> str | None:
    """The characters that send a text to the Python analysis of :class:`_Text` (the case exceptions and
    ``_LOWER_SPECIAL``), for ``_topics_scan.lower_latin1``; None when it cannot take them (over 64 above Latin-1)."""
    flags = "".join(exceptions) + _LOWER_SPECIAL
    return flags if sum(ord(ch) > 255 for ch in flags) <= 64 else None


class _Text:
    """One field's text, analysed once for all matchers: lower-cased, and every term's hits (cached).

    ``haystack`` is the lower-cased text as Latin-1 bytes (one byte per character, "?" for any other
    character), where the automata of :class:`_TermTable` look for their keys; :meth:`folded` gives the
    lower-cased characters of a span, for keys with characters outside Latin-1. A text that is mostly in
    another script (where such keys would be "found" almost everywhere), or that holds a case exception
    or one of ``_LOWER_SPECIAL``, has ``haystack`` None and is looked at as ``str.lower()`` (``wide``).
    ``exact_only``: the text takes the plain regex path (see :func:`case_exceptions`).
    """

    __slots__ = ("text", "source", "haystack", "wide", "exact_only", "_hits", "_lazy", "_raw_bytes")

    def __init__(self, text: str, exceptions: Mapping[str, str | None], finder: re.Pattern | None = None,
                 flags: str | None = "derive"):
        """``flags``: the exception characters and ``_LOWER_SPECIAL`` in one string (:func:`_flags`), for the
        C core (``_topics_scan.lower_latin1``: the haystack below in one pass, None when one of them occurs);
        by default derived from ``exceptions``; None: no C analysis."""
        if flags == "derive":
            flags = _flags(exceptions)
        self.text = self.source = text  # source: the text with its case exceptions mapped (see folded)
        self.exact_only = False
        self.haystack: bytes | None = None
        self.wide: str | None = None
        self._raw_bytes: bytes | None = None
        self._hits: dict[int, dict[int, list[tuple[int, int]]]] = {}
        self._lazy: dict[int, _LazyHits] = {}
        if flags is not None and _scan_c is not None:
            source = text
            analysed = _scan_c.lower_latin1(text, flags)
            if analysed is None and not _has_any(text, _LOWER_SPECIAL):
                # Case exceptions (the dotless "ı" of a Turkish name), each the one letter it matches: the haystack
                # of the text with them mapped to it ("Kılıç" -> "kilic"). The Python path below looks for the keys
                # in its str.lower() instead (a "wide" text): the same hits, as for every text (the hits are
                # checked in the text as written either way; folded reads ``source``).
                present = [ch for ch in exceptions if ch in text]
                if present and all(exceptions[ch] is not None for ch in present):
                    if {exceptions[ch] for ch in present}.isdisjoint(present):  # replace: C speed, same result
                        for ch in present:
                            source = source.replace(ch, exceptions[ch])
                    else:
                        source = text.translate({ord(ch): exceptions[ch] for ch in present})
                    analysed = _scan_c.lower_latin1(source, flags)
            if analysed is not None:  # the "else" branch below, in C: haystack and the count of "?" it added
                if analysed[1] * 8 > len(text):  # the same test: "?" of the text itself cancel out
                    self.wide = source.lower()
                else:
                    self.haystack = analysed[0]
                    self.source = source
                return
        # One C scan for the exception characters (``finder``: a class of them) instead of one per character.
        present = ([ch for ch in exceptions if ch in text] if finder is None or finder.search(text)
                   else [])
        if present or _has_any(text, _LOWER_SPECIAL):
            source = text
            if present:  # rare ("ı", "İ"): map them to the letter they match, or give up on the automaton
                self.exact_only = any(exceptions[ch] is None for ch in present)
                source = text.translate({ord(ch): exceptions[ch] for ch in present})
            self.wide = source.lower()
            # Texts the automaton cannot handle exactly take the plain regex path (see case_exceptions).
            self.exact_only = self.exact_only or len(self.wide) != len(text)
        else:
            haystack = text.encode("latin-1", "replace").translate(_LATIN1_LOWER)
            # Mostly another script (more than an eighth of the characters; "?" in the text aside)?
            if haystack.count(b"?") * 8 > len(text) and (haystack.count(b"?") - text.count("?")) * 8 > len(text):
                self.wide = text.lower()
            else:
                self.haystack = haystack

    @property
    def raw_bytes(self) -> bytes:
        """The text as written, as Latin-1 bytes ("?" for any other character): where the C automaton of the
        case-sensitive keys looks (see ``_TermTable._automaton``)."""
        if self._raw_bytes is None:
            self._raw_bytes = (self.text.encode("latin-1", "replace") if _scan_c is None
                               else _scan_c.latin1(self.text))
        return self._raw_bytes

    def folded(self, start: int, end: int) -> str:
        """The characters ``start:end`` of the lower-cased text (of ``haystack``, before the "?")."""
        # Only "Σ" lowers by context, and with a term holding "σ" it is a case exception (a "wide" text).
        return self.source[start:end].lower()

    def hits(self, table: "_TermTable") -> dict[int, list[tuple[int, int]]]:
        """``{term id: [(start, end), ...]}`` of every term of ``table`` (computed once per table)."""
        found = self._hits.get(id(table))
        if found is None:
            found = self._hits[id(table)] = table.find_all(self)
        return found

    def lazy_hits(self, table: "_TermTable") -> "_LazyHits":
        """The hits of ``table``'s terms, each verified when first asked for (one automaton pass per table)."""
        found = self._lazy.get(id(table))
        if found is None:
            found = self._lazy[id(table)] = _LazyHits(table, self)
        return found


class _LazyHits:
    """One table's key hits in one text, verified term by term on request: the context terms, most of whose
    hits belong to lists that no label consults for the article. :meth:`spans` of a term is exactly
    ``table.find_all(text).get(i, [])``; ``candidates`` holds every term id whose spans can be non-empty
    (None: any term, the text takes the plain regex path)."""

    __slots__ = ("_table", "_text", "_key_hits", "_checked", "candidates", "_spans")

    def __init__(self, table: "_TermTable", text: _Text):
        self._table = table
        self._text = text
        self._spans: dict[int, list[tuple[int, int]]] = {}
        # With the C core: its pass has checked every hit it can (_TermTable.c_hits), and the candidates are the
        # terms with a checked hit or a hit left to Python; otherwise the key hits, each checked on request.
        self._checked = table.c_hits(text)
        if self._checked is not None:
            self._key_hits = None
            self.candidates = self._checked[2]
        else:
            self._key_hits = table.key_hits(text)
            self.candidates = None if self._key_hits is None else self._key_hits[1]

    def spans(self, i: int) -> list[tuple[int, int]]:
        found = self._spans.get(i)
        if found is None:
            if self._checked is not None:
                found = self._spans[i] = self._table.c_term_spans(i, self._text, self._checked)
            else:
                found = self._spans[i] = self._table.term_spans(i, self._text, self._key_hits)
        return found


_COMMA_BELOW = {"ș": "[șş]", "ş": "[șş]", "ț": "[țţ]", "ţ": "[țţ]"}
_NEAR = 80  # a "search" term's match starts at most this many characters before its key
_LITERAL = re.compile(r"[^\s*#ß'’]+")  # a run of characters a term matches literally (case aside; ș/ț: both forms)
_KEY_FORMS = {"ș": "șş", "ş": "șş", "ț": "țţ", "ţ": "țţ"}  # a key with ș/ț is looked up in every spelling


def _key_forms(key: str) -> list[str]:
    """Every spelling of an automaton key: Romanian comma-below and cedilla letters are the same letter."""
    forms = [""]
    for ch in key:
        forms = [f + alt for f in forms for alt in _KEY_FORMS.get(ch, ch)]
    return forms


_SPACE_MARKS = "\u00a0\u202f-\u2010\u2011\u2013"  # what a space in a term matches besides whitespace
# Per byte of a haystack: can it stand for a character that a term's space matches (``_SPACE``)? "?" stands for
# any character outside Latin-1, such as "\u2013".
_SPACE_BYTES = bytes(bool(re.fullmatch(_SPACE, chr(b)) or b == ord("?")) for b in range(256))


def _is_space(ch: str) -> bool:
    """Exactly the characters a space in a term matches (``_SPACE``: whitespace, no-break spaces, hyphens)."""
    return ch.isspace() or ch in _SPACE_MARKS


def _is_word(ch: str) -> bool:
    """Exactly ``re``'s ``\\w`` for one character of a str (Unicode alphanumeric or ``_``)."""
    return ch.isalnum() or ch == "_"


def _literal_key(pattern: str) -> tuple[str, str | None]:
    """``(mode, key)`` of a term: where the automaton looks for it and how a hit is verified.

    * ``anchored``: the term starts with a literal run of 4+ characters, or with its longest run of
      3+ characters, or with its only one: that run is the key, and the term's regex is tried *at the
      hit* (its look-behind asks for a word start). A run may hold ș/ț: every spelling is a key;
    * ``floating``: the same after a leading ``*``;
    * ``search``: anything else ("# prozent ziel*", "de china", "g 7"): the key is the longest
      literal run (the rarest place to look), and the term's regex searches around each hit (from
      ``_NEAR`` characters before it).
    """
    body = pattern[1:] if pattern.startswith("*") else pattern
    runs = _LITERAL.findall(body)
    if not runs:
        return "search", None
    best = max(reversed(runs), key=len)  # the last of the longest: "g 7" -> "7"
    first = _LITERAL.match(body)
    if first is not None and (len(runs) == 1 or len(first.group()) >= min(4, max(3, len(best)))):
        return ("floating" if pattern.startswith("*") else "anchored"), first.group()
    return "search", best


def _after_a_number(body: str, key: str) -> bool:
    """True when a "search" term is a number, spaces and then its key ("# prozent*", "# %", "# procent"):
    every match then has a digit right before the spaces before its key (see ``_TermTable._number_near``)."""
    runs = [m for m in _LITERAL.finditer(body) if m.group() == key]
    if not runs or key != max(reversed(_LITERAL.findall(body)), key=len):
        return False
    return re.fullmatch(r"#\s*", body[:runs[-1].start()]) is not None


class _TermTable:
    """Every distinct term of a taxonomy in one Aho-Corasick automaton (``ahocorasick_rs``).

    One pass of the automaton over a field's lower-cased text finds every place where some term can
    start; the term's own regex (``term_regex``) then decides there, so a hit is a whole-word match
    with the term syntax's rules (``*``, ``#``, spaces, ``ß``/``ss``). Case-sensitive ``=`` terms
    ("=UN", "=US") have their own automaton over the text as written, so the pronouns "un" and "us"
    are not even looked at. Built once per worker; a field with no term costs two C passes.

    A term that is its key alone ("gel", "nato", "u.s.") needs no regex: a key hit that starts and ends a
    word is its match. The key equals the lower-cased text there, and every character whose lower case is
    one character matches that lower case under ``re.IGNORECASE`` (the case exceptions are translated first;
    "Σ", which lowers by context, is one when a term has "σ"; tests/test_topics.py checks every code point).

    Two ways to read a text's hits, with the same spans per term (a term's hits never depend on the
    other terms of the table): :meth:`find_all` verifies every term's key hits at once (the primary
    terms, which every article needs); :meth:`key_hits` and :meth:`term_spans` verify one term's key
    hits when it is asked for (the context terms: most of their hits belong to lists a label never
    consults).
    """

    def __init__(self, patterns: Iterable[str], dense: bool = True):
        """``dense``: automata as DFAs (fastest, several MiB for a big table); otherwise as contiguous NFAs
        (about a third of the memory, about 1.5x the scan time: for the context tables, which only the
        articles that reach scoring scan)."""
        self._implementation = "DFA" if dense else "ContiguousNFA"
        self.patterns = sorted(set(patterns))
        self.ids = {p: i for i, p in enumerate(self.patterns)}
        # Compiled on first use (_regex): most terms never reach their regex in a run, and compiling all
        # ~3,700 took about a second per worker process.
        self.regexes: list[re.Pattern | None] = [None] * len(self.patterns)
        self._search_always: list[int] = []  # "search" terms without any literal part (only "#")
        # Per "search" term: its literal runs other than its key, lower-cased as Latin-1 bytes (see _search_near).
        self._runs: dict[int, tuple[bytes, ...]] = {}
        # Per key: (term, search?, starts a word?, the whole term?, a number before the key?). A hit of an
        # anchored term that does not start a word (or, for a term that is its key alone, does not end one)
        # cannot match: its regex is not tried there (the regex's own look-behind/look-ahead would fail, see
        # _is_word). A term that is its key alone needs no regex at all (see the class docstring).
        folded: dict[str, list[tuple[int, bool, bool, bool, bool]]] = {}
        exact: dict[str, list[tuple[int, bool, bool, bool, bool]]] = {}
        # Anchored terms that are their key and then "*" ("sanktion*"): at a word start their regex matches the
        # key and the rest of the word, always (the C core reports them so, see _automaton).
        self._tails: set[int] = set()
        self._floating: dict[int, bool] = {}  # leading-* terms that are "*" and their key (then "*"?)
        self._number_keys: dict[int, bool] = {}  # "# key" and "# key*" terms (then "*"?)
        self._next_runs: dict[int, bytes] = {}

        def entry_after_number(body: str, mode: str, key: str) -> bool:
            # (a key that starts with a character a space matches, "-": its place in a match is not the hit's)
            return (mode == "search" and not body.startswith("*") and _after_a_number(body, key)
                    and not _is_space(key[0]))
        for i, pattern in enumerate(self.patterns):
            body = pattern[1:] if pattern.startswith("=") else pattern
            mode, key = _literal_key(body)
            if key is None:
                self._search_always.append(i)
                continue
            if mode == "anchored" and body == key + "*":
                self._tails.add(i)
            elif mode == "floating" and body in ("*" + key, "*" + key + "*"):
                self._floating[i] = body.endswith("*", 1)  # "*ausgaben", "*budget*": any start, like a key alone
            elif (entry_after_number(body, mode, key) and re.fullmatch(r"#\s+" + re.escape(key) + r"\*?", body)
                  and key[0] not in ".," and not key[0].isdecimal()):
                self._number_keys[i] = body.endswith("*")  # "# prozent*", "# %": checked in C (_c_check)
            elif (mode == "anchored" and body != key) or entry_after_number(body, mode, key):
                # The literal run after the spaces right after the key ("zwei prozent": "prozent"; "# prozent
                # ziel*": "ziel"), for the C core's check before the regex (see _c_check); only a Latin-1 run
                # after a space. The key of a number-then-key term is right after the number and its spaces.
                after = re.match(r"\s+([^\s*#ß'’]+)", body[body.index(key) + len(key):] if mode == "search"
                                 else body[len(key):])
                if after is not None and max(map(ord, after.group(1))) < 256:
                    self._next_runs[i] = after.group(1).encode("latin-1")
            entry = (i, mode == "search", mode == "anchored", mode == "anchored" and body == key,
                     mode == "search" and not body.startswith("*") and _after_a_number(body, key))
            if mode == "search":
                self._runs[i] = tuple(dict.fromkeys(run.lower().encode("latin-1", "replace")
                                                    for run in _LITERAL.findall(body) if run != key))
            for form in _key_forms(key if pattern.startswith("=") else key.lower()):
                (exact if pattern.startswith("=") else folded).setdefault(form, []).append(entry)
        self._folded_keys = folded
        # Three automata: the lower-cased keys in a text's Latin-1 haystack, the case-sensitive keys in the
        # text, and (built when a "wide" text first needs it) the lower-cased keys in its str.lower().
        # Per automaton: (automaton, keys) as _automaton makes it, and its index (see _index).
        self._automata: list = [self._automaton(folded, True), self._automaton(exact, False, _scan_c is not None),
                                None]
        self._indexes: list = [self._index(self._automata[0]), self._index(self._automata[1]), None]

    @staticmethod
    def _index(automaton) -> tuple[dict[int, list[tuple[int, int, tuple, str | None]]], list[frozenset[int]]]:
        """``(keys_of, ids_of_key)`` of an automaton: per term, ``(key number, length, entry, the key's
        characters when the hit must be checked, see _automaton)`` of each of its keys (term_spans); per
        key, the ids of its terms (key_hits)."""
        keys_of: dict[int, list[tuple[int, int, tuple, str | None]]] = {}
        ids_of_key: list[frozenset[int]] = []
        for k, (length, entries, _word_start_only, forms) in enumerate(automaton[1] if automaton else ()):
            by_form = forms.items() if forms is not None else [(None, entries)]
            ids_of_key.append(frozenset(entry[0] for _form, es in by_form for entry in es))
            for form, es in by_form:
                for entry in es:
                    keys_of.setdefault(entry[0], []).append((k, length, entry, form))
        return keys_of, ids_of_key

    def _passes(self, text: _Text) -> Iterable[tuple[int, Any, str | bytes]]:
        """``(automaton number, automaton, haystack)`` of the passes over ``text``: its lower-cased keys in
        its Latin-1 haystack (or, for a "wide" text, in its lower-cased str), its case-sensitive keys in it."""
        if text.haystack is not None:
            if self._automata[0] is not None:
                yield 0, self._automata[0], text.haystack
        elif self._folded_keys:
            if self._automata[2] is None:  # built whole, then published: threads may share the table
                automaton = self._automaton(self._folded_keys, False, wide=True)
                self._indexes[2] = self._index(automaton)
                self._automata[2] = automaton
            yield 2, self._automata[2], text.wide
        if self._automata[1] is not None:
            yield 1, self._automata[1], (text.raw_bytes if len(self._automata[1]) > 2 else text.text)

    def _automaton(self, keyed: Mapping[str, list[tuple]], latin1: bool, raw_bytes: bool = False, wide: bool = False):
        """``(automaton, per key: (length, entries, every entry needs a word start, forms))``, or None; with the C
        core (``transforms/_topics_scan.c``) for Latin-1 bytes, a third element (see :meth:`_c_automaton`).

        ``latin1``: the keys (lower-cased) are looked for in :attr:`_Text.haystack`, as Latin-1 bytes where
        any other character is "?": a key with such characters ("alianța" -> b"alian?a") has ``entries`` ()
        and ``forms`` ``{key: entries}`` of the keys that share its bytes, and a hit counts for the key that
        :meth:`_Text.folded` spells there (if any); for a Latin-1 key ``forms`` is None and the hit is a
        hit. Otherwise (the case-sensitive keys) the automaton reads the text itself.

        ``ahocorasick_rs`` (Rust ``aho-corasick``) as a DFA: one overlapping pass reports every key at every
        position, as pyahocorasick's ``iter`` did, at about a fifth of its cost (bench corpus, 2,600
        characters: 108 -> 24 µs per field; on Latin-1 bytes about 12 µs; docs/topics.md "Speed")."""
        if not keyed:
            return None
        import ahocorasick_rs

        implementation = getattr(ahocorasick_rs.Implementation, self._implementation)
        if (latin1 and _scan_c is not None) or raw_bytes:
            return self._c_automaton(keyed, raw_bytes)
        if wide and _scan_c is not None:
            try:  # a "wide" text's str.lower(): the C core reads its code points
                return self._c_automaton(keyed, False, wide=True)
            except ValueError:  # a key character outside the BMP, or over 255 distinct ones: ahocorasick_rs
                pass
        if not latin1:
            keys = list(keyed)
            automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard,
                                                   implementation=implementation)
            return automaton, [(len(key), tuple(keyed[key]), all(entry[2] for entry in keyed[key]), None)
                               for key in keys]
        by_bytes: dict[bytes, dict[str, tuple]] = {}
        for key, entries in keyed.items():
            by_bytes.setdefault(key.encode("latin-1", "replace"), {})[key] = tuple(entries)
        table = []
        for encoded, forms in by_bytes.items():
            every = [entry for entries in forms.values() for entry in entries]
            exact = encoded.decode("latin-1") in forms  # a Latin-1 key (alone: others have a "?")
            table.append((len(encoded), forms[encoded.decode("latin-1")] if exact else (),
                          all(entry[2] for entry in every), None if exact else forms))
        automaton = ahocorasick_rs.BytesAhoCorasick(list(by_bytes), matchkind=ahocorasick_rs.MatchKind.Standard,
                                                    implementation=implementation)
        return automaton, table

    def _c_automaton(self, keyed: Mapping[str, list[tuple]], case_sensitive: bool, wide: bool = False):
        """``(automaton, table, rest)``: as :meth:`_automaton` makes them for Latin-1 bytes, the automaton from the
        C core (``_topics_scan.Automaton``). Its keys are looked for in the lower-cased haystack (the folded keys)
        or in :attr:`_Text.raw_bytes` (the case-sensitive keys, ``raw_bytes``: a key with characters outside
        Latin-1 has ``forms`` of the keys spelled as written). The C pass checks the terms that are their key
        alone and the key-then-``*`` terms of a Latin-1 key itself (the inlined checks of :meth:`_scan`, in C);
        ``rest``, per key, the entries left to :meth:`_c_scan` (every entry for a key with ``forms``)."""
        by_bytes: dict[bytes | str, dict[str, tuple]] = {}
        for key, entries in keyed.items():
            by_bytes.setdefault(key if wide else key.encode("latin-1", "replace"), {})[key] = tuple(entries)
        table, rest, flags, whole, tail, fwhole, ftail = [], [], bytearray(), [], [], [], []
        for encoded, forms in by_bytes.items():
            every = [entry for entries in forms.values() for entry in entries]
            spelled = encoded if wide else encoded.decode("latin-1")
            exact = spelled in forms
            entries = forms[spelled] if exact else ()
            word_start_only = all(entry[2] for entry in every)
            table.append((len(encoded), entries, word_start_only, None if exact else forms))
            done = [e for e in entries if e[3] or e[0] in self._tails or e[0] in self._floating]  # e[3]: whole key
            rest.append(tuple(self._c_check(e, case_sensitive, wide) for e in entries if e not in done))
            whole.append(tuple(e[0] for e in done if e[3]))
            tail.append(tuple(e[0] for e in done if e[0] in self._tails))
            fwhole.append(tuple(e[0] for e in done if self._floating.get(e[0]) is False))
            ftail.append(tuple(e[0] for e in done if self._floating.get(e[0]) is True))
            flags.append(int(word_start_only) | (0 if exact else 2))
        automaton = _scan_c.Automaton(tuple(by_bytes), bytes(flags), tuple(whole), tuple(tail), tuple(fwhole),
                                      tuple(ftail), tuple(rest), _SPACE_BYTES, _NEAR)
        return automaton, table, None

    def _c_check(self, entry: tuple, case_sensitive: bool, wide: bool = False) -> tuple[tuple, int, Any]:
        """``(entry, kind, data)``: what the C core checks of a hit before it passes ``entry`` on to
        :meth:`_c_scan`, each a condition without which the entry's term has no match there (so Python finds
        nothing where C passes nothing on):

        * 2, a number-then-key term: a decimal digit right before the spaces before the hit (``_digits_before``);
          5: the same and its literal run after the key's spaces (as for 1: "# prozent ziel*", the key of whose
          match is the hit itself, right after the number's spaces);
        * 3, another "search" term: each of its other literal runs in the window (``_search_near``, ``data``);
        * 1, an anchored term with a Latin-1 literal run after its key's spaces: a word start, and that run
          (``data``, lower-cased unless ``case_sensitive``) in the haystack after the hit and a run of
          ``_SPACE_BYTES``. Exact for a text without a case exception (:func:`case_exceptions` of the alphabet
          of the term): there a character matches a term's letter under ``re.IGNORECASE`` exactly when its
          lower case is that letter, and a character outside Latin-1 ("?" in the haystack) matches none;
        * 4, any other anchored term: a word start; 0: anything else, no check;
        * 6, a term "# key" or "# key*" (``data``: its id and whether it ends with "*"): C finds its matches
          itself (``number_key`` in the C file: what _number_near does for such a term), nothing is passed on.

        The terms that are their key alone, their key and "*", "*" and their key, or "*", their key and "*" are
        not entries here: the C pass reports their matches itself (``whole``, ``tail``, ``fwhole``, ``ftail``).
        """
        i, search, word_start, _whole, after_number = entry
        run = None if wide else self._next_runs.get(i)  # (a wide text has no byte haystack to look in)
        if run is not None and not case_sensitive:
            run = run.decode("latin-1").lower().encode("latin-1", "replace")
        if search:
            if i in self._number_keys:
                return entry, 6, (i, self._number_keys[i])
            if after_number:
                return (entry, 2, None) if run is None else (entry, 5, run)
            return entry, 3, self._runs[i]
        if not word_start:
            return entry, 0, None
        return (entry, 4, None) if run is None else (entry, 1, run)

    def _c_scan(self, which: int, automaton, haystack: bytes, text: _Text, found: dict[int, list[tuple[int, int]]],
                seen: set[tuple[int, int]]) -> None:
        """:meth:`_scan` with the C core: the C pass adds the hits of the whole-key and key-then-``*`` terms to
        ``found`` and returns the hits whose other entries need Python (regexes, "search" terms, ``forms``)."""
        self._c_pending(which, automaton[1], automaton[0].scan(haystack, text.text, found, text.haystack), text,
                        found, seen)

    def _c_pending(self, which: int, keyed: list, pending: list, text: _Text, found: dict[int, list[tuple[int, int]]],
                   seen: set[tuple[int, int]]) -> None:
        """The hits the C pass of automaton ``which`` left to Python (see _c_scan)."""
        raw = text.text
        for one, k, at, end, inside in pending:
            if one is not None:
                self._check(one, raw, at, end, inside, found, seen, text.haystack)
            else:
                forms = keyed[k][3]
                for entry in forms.get(raw[at:end] if which == 1 else text.folded(at, end), ()):
                    self._check(entry, raw, at, end, inside, found, seen, text.haystack)

    def _check(self, entry: tuple, raw: str, at: int, end: int, inside: bool, found: dict[int, list[tuple[int, int]]],
               seen: set[tuple[int, int]], haystack: bytes | None) -> None:
        """The loop body of :meth:`_scan` for one entry of a key's hit at ``at:end`` (``inside``: after a word
        character): the matches of its term there go to ``found``."""
        i, search, word_start, whole, after_number = entry
        if search:
            if after_number:
                digits = self._digits_before(raw, at)
                if digits is not None:
                    self._number_near(i, raw, at, digits, found, seen)
            else:
                self._search_near(i, raw, at, end - at, found, seen, haystack)
            return
        if word_start and inside:
            return
        if whole:
            if end >= len(raw) or not _is_word(raw[end]):
                found.setdefault(i, []).append((at, end))
            return
        match = self._regex(i).match(raw, at)
        if match is not None:
            found.setdefault(i, []).append((at, match.end()))

    def c_hits(self, text: _Text) -> tuple[dict[int, list[tuple[int, int]]], dict[int, list[tuple]], set[int]] | None:
        """``(found, pending, candidates)`` of ``text`` from the C core's passes, for :meth:`c_term_spans`: the
        matches of the terms it checks itself, per term id the hits left to Python (``(entry, at, end,
        inside)``), and every term id whose matches can be non-empty. None when a pass is not the C core's (no C
        core, or a "wide" text) or the text takes the plain regex path."""
        if text.exact_only or text.haystack is None or len(self._automata[0] or (0, 0, 0)) < 3:
            return None
        found: dict[int, list[tuple[int, int]]] = {}
        pending: dict[int, list[tuple]] = {}
        if not text.text:
            return found, pending, set()
        raw = text.text
        for which, (automaton, keyed, _), haystack in self._passes(text):
            for one, k, at, end, inside in automaton.scan(haystack, raw, found, text.haystack):
                if one is not None:
                    pending.setdefault(one[0], []).append((one, at, end, inside))
                else:
                    for entry in keyed[k][3].get(raw[at:end] if which == 1 else text.folded(at, end), ()):
                        pending.setdefault(entry[0], []).append((entry, at, end, inside))
        return found, pending, set(found).union(pending, self._search_always)

    def c_term_spans(self, i: int, text: _Text, checked) -> list[tuple[int, int]]:
        """The sorted ``(start, end)`` of term ``i`` in ``text`` (``checked``: :meth:`c_hits` of it): exactly
        ``find_all(text).get(i, [])`` (what _c_scan does for the term's hits, and the term's own _search)."""
        raw = text.text
        if not raw:
            return []
        found_c, pending, _candidates = checked
        found = {i: list(found_c.get(i, ()))}
        if i in self._search_always:
            self._search(i, raw, found)
        else:
            seen: set[tuple[int, int]] = set()
            for entry, at, end, inside in pending.get(i, ()):
                self._check(entry, raw, at, end, inside, found, seen, text.haystack)
        spans = found[i]
        spans.sort()
        return spans

    def _regex(self, i: int) -> re.Pattern:
        rx = self.regexes[i]
        if rx is None:
            rx = self.regexes[i] = _term_rx(self.patterns[i])
        return rx

    def _search(self, i: int, raw: str, found: dict[int, list[tuple[int, int]]]) -> None:
        """Every start position where term ``i`` matches (overlapping ones included)."""
        rx = self._regex(i)
        match = rx.search(raw)
        while match:
            found.setdefault(i, []).append((match.start(), match.end()))
            match = rx.search(raw, match.start() + 1)

    def _search_near(self, i: int, raw: str, at: int, length: int, found: dict[int, list[tuple[int, int]]],
                     seen: set[tuple[int, int]], haystack: bytes | None) -> None:
        """Matches of term ``i`` that contain its key's hit at ``at`` (start at most _NEAR before it).

        Each match is first found inside the window ``pos:stop``, so it holds every literal run of the term
        there: when the Latin-1 ``haystack`` (see :class:`_Text`; None: not checked) lacks one of them in
        the window, there is no match and no regex runs."""
        pos, stop = max(0, at - _NEAR), at + length + _NEAR
        if haystack is not None:
            for run in self._runs[i]:
                if haystack.find(run, pos, stop) < 0:
                    return
        rx = self._regex(i)
        match = rx.search(raw, pos, stop)
        while match is not None and match.start() <= at:
            start = match.start()
            full = rx.match(raw, start)  # the window's end must not cut the match short
            if full is not None and full.end() > at and (i, start) not in seen:
                seen.add((i, start))
                found.setdefault(i, []).append((start, full.end()))
            match = rx.search(raw, start + 1, stop)

    @staticmethod
    def _digits_before(raw: str, at: int) -> range | None:
        """Where a match of a number-then-key term ("# prozent*") that holds the key's hit at ``at`` can start:
        the positions of the number right before the spaces (the term's space class) before ``at``, at most
        _NEAR back ("1.5 Prozent": "1.5 Prozent" and "5 Prozent"); None without such a number."""
        limit = max(0, at - _NEAR)
        p = at - 1
        while p >= limit and (raw[p].isspace() or raw[p] in _SPACE_MARKS):  # _is_space, inlined
            p -= 1
        if p < limit or not raw[p].isdecimal():
            return None
        q = p
        while q > limit and (raw[q - 1].isdecimal() or raw[q - 1] in ".,"):
            q -= 1
        return range(q, p + 1)

    def _number_near(self, i: int, raw: str, at: int, starts: range, found: dict[int, list[tuple[int, int]]],
                     seen: set[tuple[int, int]]) -> None:
        """:meth:`_search_near` for a term that is a number, spaces and its key ("# prozent*"): the same
        matches, from the only places they can start (``starts``: :meth:`_digits_before` of the hit, shared
        by the terms of one key). A match has its key right after the spaces after its number, so the hit at
        ``at`` yields matches only from the digits of that number, and not from a digit right after a word
        character (the term starts with a word-start look-behind: it has no leading ``*``). A hit inside a
        longer match ("3 Prozentprozent") finds nothing here, but that match is found from its own key's hit,
        exactly as _search_near finds it there (``seen`` drops repeats in both)."""
        rx = self._regex(i)
        for start in starts:
            if not raw[start].isdecimal() or (start and _is_word(raw[start - 1])) or (i, start) in seen:
                continue
            full = rx.match(raw, start)
            if full is not None and full.end() > at:
                seen.add((i, start))
                found.setdefault(i, []).append((start, full.end()))

    def _verify(self, entry: tuple, raw: str, at: int, length: int, found: dict[int, list[tuple[int, int]]],
                seen: set[tuple[int, int]], haystack: bytes | None) -> None:
        """Add to ``found`` the matches of ``entry``'s term that its key's hit at ``at`` stands for (the
        reference for the inlined loop of :meth:`_scan`; ``haystack``: the text's, see _search_near)."""
        i, search, word_start, whole, after_number = entry
        if search:
            if after_number:
                starts = self._digits_before(raw, at)
                if starts is not None:
                    self._number_near(i, raw, at, starts, found, seen)
            else:
                self._search_near(i, raw, at, length, found, seen, haystack)
            return
        if word_start and at > 0 and _is_word(raw[at - 1]):
            return
        end = at + length
        if whole:
            if end >= len(raw) or not _is_word(raw[end]):
                found.setdefault(i, []).append((at, end))  # a whole-key term
            return
        match = self._regex(i).match(raw, at)
        if match is not None:
            found.setdefault(i, []).append((at, match.end()))

    def _scan(self, automaton, haystack: str | bytes, text: _Text, found: dict[int, list[tuple[int, int]]],
              seen: set[tuple[int, int]]) -> None:
        """:meth:`_verify` of every entry of every key hit of ``automaton`` in ``haystack``, inlined for
        anchored terms (the hot path of every article): ``ch.isalnum() or ch == "_"`` is :func:`_is_word`."""
        regexes = self.regexes
        raw = text.text
        size = len(raw)
        automaton, keyed = automaton
        for k, at, end in automaton.find_matches_as_indexes(haystack, overlapping=True):
            length, entries, word_start_only, forms = keyed[k]
            inside = False
            if at:
                ch = raw[at - 1]
                if ch.isalnum() or ch == "_":  # the hit does not start a word
                    if word_start_only:
                        continue
                    inside = True
            if forms is not None:  # a key with characters outside Latin-1: which one is here, if any
                entries = forms.get(text.folded(at, end), ())
            digits: range | None | bool = False  # _digits_before(raw, at), once per hit
            for entry in entries:
                i, search, word_start, whole, after_number = entry
                if search:
                    if after_number:
                        if digits is False:
                            digits = self._digits_before(raw, at)
                        if digits is not None:
                            self._number_near(i, raw, at, digits, found, seen)
                    else:
                        self._search_near(i, raw, at, length, found, seen, text.haystack)
                    continue
                if word_start and inside:
                    continue
                if whole:
                    if end < size:
                        ch = raw[end]
                        if ch.isalnum() or ch == "_":
                            continue
                    found.setdefault(i, []).append((at, end))  # a whole-key term
                    continue
                rx = regexes[i]
                if rx is None:
                    rx = self._regex(i)
                match = rx.match(raw, at)
                if match is not None:
                    found.setdefault(i, []).append((at, match.end()))

    def find_all(self, text: _Text) -> dict[int, list[tuple[int, int]]]:
        """``{term id: [(start, end), ...]}`` (sorted) of every term that matches ``text``."""
        raw = text.text
        found: dict[int, list[tuple[int, int]]] = {}
        if not raw:
            return found
        if text.exact_only:
            for i in range(len(self.patterns)):
                self._search(i, raw, found)
            return found
        first = self.c_first(text)
        if first is not None:
            return self.c_finish(text, first[0], first[1])
        seen: set[tuple[int, int]] = set()
        for which, automaton, haystack in self._passes(text):
            if len(automaton) > 2:
                self._c_scan(which, automaton, haystack, text, found, seen)
            else:
                self._scan(automaton, haystack, text, found, seen)
        for i in self._search_always:
            self._search(i, raw, found)
        for spans in found.values():
            if len(spans) > 1:
                spans.sort()
        return found

    def c_first(self, text: _Text) -> tuple[dict[int, list[tuple[int, int]]], list, set[int] | None] | None:
        """The C core's passes of :meth:`find_all` (the hot path of every article), before Python's part:
        ``(found, pending, maybe)``: the matches the C passes found, the hits they left to Python (per pass:
        ``(automaton number, its keys' table, hits)``), and the ids of the terms Python may still add (None:
        any); :meth:`c_finish` completes them. None when find_all does not take this path (no C core, a "wide"
        text, the plain regex path)."""
        folded, exact = self._automata[0], self._automata[1]
        if (text.exact_only or text.haystack is None or (folded is not None and len(folded) < 3)
                or (exact is not None and len(exact) < 3)):
            return None
        raw = text.text
        found: dict[int, list[tuple[int, int]]] = {}
        if not raw:
            return found, [], set()
        pending = []
        if folded is not None:
            hits = folded[0].scan(text.haystack, raw, found, text.haystack)
            if hits:
                pending.append((0, folded[1], hits))
        if exact is not None:
            hits = exact[0].scan(text.raw_bytes, raw, found, text.haystack)
            if hits:
                pending.append((1, exact[1], hits))
        maybe: set[int] | None = set(self._search_always)
        for _which, _keyed, hits in pending:
            for one, *_rest in hits:
                if one is None:  # a key with forms: any of its terms
                    maybe = None
                    break
                maybe.add(one[0])
            if maybe is None:
                break
        return found, pending, maybe

    def c_finish(self, text: _Text, found: dict[int, list[tuple[int, int]]], pending: list
                 ) -> dict[int, list[tuple[int, int]]]:
        """:meth:`find_all` of ``text`` from :meth:`c_first`'s ``found`` and ``pending`` (completes ``found``).
        The C pass's span lists come sorted: they are sorted again only when Python adds to them."""
        raw = text.text
        if not raw or not (pending or self._search_always):
            return found
        seen: set[tuple[int, int]] = set()
        for which, keyed, hits in pending:
            self._c_pending(which, keyed, hits, text, found, seen)
        for i in self._search_always:
            self._search(i, raw, found)
        for spans in found.values():
            if len(spans) > 1:
                spans.sort()
        return found

    def key_hits(self, text: _Text) -> tuple[tuple[dict[int, list[int]], ...], set[int]] | None:
        """``(starts, candidates)``: per automaton (see _passes) ``{key number: [start, ...]}`` of the keys'
        hits in ``text``, not verified (:meth:`term_spans` does that per term), and the ids of the terms that
        can match (a key hit, or no key at all); None when ``text`` takes the plain regex path."""
        if text.exact_only:
            return None
        by_automaton: list[dict[int, list[int]]] = [{}, {}, {}]
        candidates: set[int] = set()
        if text.text:
            candidates.update(self._search_always)
            for which, automaton, haystack in self._passes(text):
                if len(automaton) > 2:  # the C core
                    starts = by_automaton[which] = automaton[0].starts(haystack)
                else:
                    starts = by_automaton[which]
                    for k, at, _end in automaton[0].find_matches_as_indexes(haystack, overlapping=True):
                        starts.setdefault(k, []).append(at)
                ids_of_key = self._indexes[which][1]
                for k in starts:
                    candidates.update(ids_of_key[k])
        return by_automaton, candidates

    def term_spans(self, i: int, text: _Text, key_hits) -> list[tuple[int, int]]:
        """The sorted ``(start, end)`` of term ``i`` in ``text`` (``key_hits``: :meth:`key_hits` of it):
        exactly ``find_all(text).get(i, [])``."""
        raw = text.text
        found: dict[int, list[tuple[int, int]]] = {}
        if not raw:
            return []
        if key_hits is None or i in self._search_always:
            self._search(i, raw, found)
        else:
            seen: set[tuple[int, int]] = set()
            for which, starts in enumerate(key_hits[0]):
                if not starts:
                    continue
                for k, length, entry, form in self._indexes[which][0].get(i, ()):
                    for at in starts.get(k, ()):
                        if form is None or (raw[at:at + length] if which == 1 else text.folded(at, at + length)) == form:
                            self._verify(entry, raw, at, length, found, seen, text.haystack)
        spans = found.get(i, [])
        spans.sort()
        return spans


def _word_start(text: str, start: int) -> int:
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return start


class _Matcher:
    """A list of terms matched as one alternation regex would (``finditer``), from a :class:`_TermTable`.

    The alternation (kept for :meth:`find_regex`, the reference) tries every term at every character.
    Instead, the table's automaton finds each term's hits once per field for all matchers; a matcher
    only resolves the hits of its own terms like the alternation: leftmost first, then the first
    alternative, no overlaps.
    """

    def __init__(self, terms: Iterable[Mapping[str, Any]], tables: tuple[_TermTable, ...] = (),
                 lazy: tuple[_TermTable, ...] = ()):
        """``tables``: where the terms' hits come from, each term from the first table that holds it (a
        term's hits do not depend on the table: :meth:`_TermTable.find_all` verifies every term on its
        own); without tables, one table of the matcher's own terms. The tables in ``lazy`` are read term by
        term (:meth:`_Text.lazy_hits`), the others whole (:meth:`_Text.hits`). Raises ValueError for a term
        that no table holds."""
        # Longer patterns first, so the most specific alternative wins at a position.
        unique: dict[str, float] = {}
        for term in terms:
            unique.setdefault(term["pattern"], term["weight"])
        self.terms = sorted(unique.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        self._regex: re.Pattern | None = None
        tables = tables or (_TermTable(p for p, _ in self.terms),)
        # Alternation order: the anchored terms (in list order), then the leading-* ones.
        order = sorted(range(len(self.terms)), key=lambda i: (self.terms[i][0].startswith("*"), i))
        by_table: dict[int, dict[int, tuple[int, int]]] = {id(table): {} for table in tables}
        for rank, i in enumerate(order):
            pattern = self.terms[i][0]
            table = next((t for t in tables if pattern in t.ids), None)
            if table is None:
                raise ValueError(f"term {pattern!r} is in none of the matcher's tables")
            by_table[id(table)][table.ids[pattern]] = (rank, i)
        # Per table that holds some of the terms: (table, {term id in that table: (alternation rank, term)},
        # those ids, read term by term?).
        self._sources = [(table, by_table[id(table)], frozenset(by_table[id(table)]), any(table is t for t in lazy))
                         for table in tables if by_table[id(table)]]

    @property
    def regex(self) -> re.Pattern | None:
        """The single alternation regex over all terms (compiled on first use)."""
        if self._regex is None and self.terms:
            # Terms anchored at a word start share one look-behind, so most positions fail at once.
            anchored = [f"(?P<t{i}>{term_regex(p)[len(_WORD_START):]})"
                        for i, (p, _) in enumerate(self.terms) if not p.startswith(("*", "="))]
            floating = [f"(?P<t{i}>{term_regex(p)})" for i, (p, _) in enumerate(self.terms)
                        if p.startswith(("*", "="))]
            branches = ([_WORD_START + "(?:" + "|".join(anchored) + ")"] if anchored else []) + floating
            self._regex = re.compile("|".join(branches), re.IGNORECASE)
        return self._regex

    @property
    def alphabet(self) -> str:
        """The letters the automaton compares (give :func:`case_exceptions` of them to :class:`_Text`)."""
        return _alphabet(p for p, _ in self.terms)

    def _report(self, i: int, text: str, start: int, end: int) -> tuple[str, float, int, int]:
        pattern, weight = self.terms[i]
        if pattern.startswith("*"):  # report the whole word a leading-* term sits in
            start = _word_start(text, start)
        return pattern, weight, start, end

    def find_regex(self, text: str) -> Iterable[tuple[str, float, int, int]]:
        """``(pattern, weight, start, end)`` of every match, by the alternation regex (the reference)."""
        if not self.terms or not text:
            return
        for match in self.regex.finditer(text):
            yield self._report(int(match.lastgroup[1:]), text, match.start(), match.end())

    def _hits(self, text: _Text) -> list[tuple[int, int, int, int]]:
        """``(start, alternation rank, end, term)`` of every hit of the terms in ``text`` (unsorted)."""
        starts: list[tuple[int, int, int, int]] = []
        append = starts.append
        for table, by_id, ids, lazy in self._sources:
            if lazy:
                pending = text._lazy.get(id(table)) or text.lazy_hits(table)
                candidates = pending.candidates
                for tid in (ids if candidates is None else ids.intersection(candidates)):
                    rank, i = by_id[tid]
                    for s, e in pending.spans(tid):
                        append((s, rank, e, i))
            else:
                hits = text._hits.get(id(table))
                if hits is None:
                    hits = text.hits(table)
                if hits:
                    for tid in ids.intersection(hits):
                        rank, i = by_id[tid]
                        for s, e in hits[tid]:
                            append((s, rank, e, i))
        return starts

    def find(self, text: _Text) -> Iterable[tuple[str, float, int, int]]:
        """Same as :meth:`find_regex` on ``text.text``, from the tables' hits."""
        if not self.terms or not text.text:
            return
        starts = self._hits(text)
        if not starts:
            return
        if len(starts) > 1:
            starts.sort()
        pos = 0
        raw = text.text
        for start, _rank, end, i in starts:
            if start >= pos:
                pos = end
                yield self._report(i, raw, start, end)


def _matches(matcher: _Matcher, texts: Mapping[str, _Text]) -> list[dict[str, Any]]:
    """``[{term, weight, field, start, end}]`` of ``matcher``'s matches in each field: :meth:`_Matcher.find`,
    inlined (scoring calls this a few dozen times per article)."""
    found: list[dict[str, Any]] = []
    if not matcher.terms:
        return found
    terms = matcher.terms
    for field, text in texts.items():
        raw = text.text
        if not raw:
            continue
        starts = matcher._hits(text)
        if not starts:
            continue
        if len(starts) > 1:
            starts.sort()
        pos = 0
        for start, _rank, end, i in starts:
            if start >= pos:
                pos = end
                pattern, weight = terms[i]
                if pattern.startswith("*"):  # report the whole word a leading-* term sits in (_report)
                    start = _word_start(raw, start)
                found.append({"term": pattern, "weight": weight, "field": field, "start": start, "end": end})
    return found


# A sentence end: ". ", "! ", "? " (closing quotes or brackets allowed before the space) or a line break.
_SENTENCE_END = re.compile("[.!?\u2026][\"'\u00bb\u201d\u2019)]*\\s|\n")


def _sentence_end_between(text: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when a sentence ends between the end of the earlier match and the start of the later one."""
    first, second = (a, b) if a["start"] <= b["start"] else (b, a)
    if second["start"] <= first["end"]:
        return False
    # From the earlier match's end: "U.S. defence budget" ends no sentence after the term "U.S.".
    return _SENTENCE_END.search(text, first["end"], second["start"]) is not None


def _near(a: Mapping[str, Any], b: Mapping[str, Any], before: int, after: int) -> bool:
    """True when match ``b`` starts at most ``before`` chars before ``a`` or ends at most ``after`` after it."""
    return a["field"] == b["field"] and b["end"] >= a["start"] - before and b["start"] <= a["end"] + after


def _patterns(value: Any) -> Iterable[str]:
    """Every term pattern in (a part of) validated taxonomy data."""
    if isinstance(value, Mapping):
        if "pattern" in value:
            yield value["pattern"]
        else:
            for item in value.values():
                yield from _patterns(item)
    elif isinstance(value, list):
        for item in value:
            yield from _patterns(item)


def _term_lists(spec: Mapping[str, Any]) -> Iterable[tuple[bool, Mapping[str, list]]]:
    """Every term list (``{language: [term]}``) of a validated label, each with True when it is primary: a
    list whose match can make the label (``terms``, combo groups); the others (vetoes, requires, context,
    ``not_near``, ``satisfied_in``) only weigh, cancel or confirm such a match."""
    yield True, spec["terms"]
    for combo in spec["combos"]:
        for group in combo["groups"]:
            yield True, group
        if combo.get("not_near"):
            yield False, combo["not_near"]
    for rule in spec["veto"]:
        yield False, rule["terms"]
        if rule["unless"]:
            yield False, rule["unless"]
    for group in spec["requires"]:
        yield False, group["terms"]
        for key in ("owners", "owner_not_near", "unless", "positive_with"):
            if (group.get("satisfied_in") or {}).get(key):
                yield False, group["satisfied_in"][key]
    if spec["context"]:
        yield False, spec["context"]


class _LabelGate:
    """Which labels an article can get, from the ids of the primary-table terms that occur in it.

    A label can be assigned only with a positive match: a hit of one of its terms, or of every group of one
    of its combos. :meth:`possible` returns exactly the labels for which the present ids allow that (in
    taxonomy order); the others need not be scored. One bit per label (any of its terms) and one per combo
    group: the present ids' bits are OR-ed, and a label is possible when its term bit is set or every group
    bit of one of its combos is.
    """

    def __init__(self, table: _TermTable, used: Mapping[str, tuple[set[str], list[list[set[str]]]]]):
        """``used``: per label (in taxonomy order), the patterns of its terms and, per combo, of each group."""
        self._bits: dict[int, int] = {}  # term id -> OR of the bits it sets
        # (label, its term bit, per combo: its group bits, all its bits)
        self._labels: list[tuple[str, int, list[int], int]] = []
        bit = 1
        for name, (terms, combos) in used.items():
            term_bit, bit = bit, bit << 1
            for p in terms:
                self._bits[table.ids[p]] = self._bits.get(table.ids[p], 0) | term_bit
            combo_masks = []
            for groups in combos:
                mask = 0
                for group in groups:
                    for p in group:
                        self._bits[table.ids[p]] = self._bits.get(table.ids[p], 0) | bit
                    mask, bit = mask | bit, bit << 1
                combo_masks.append(mask)
            every = term_bit
            for mask in combo_masks:
                every |= mask
            self._labels.append((name, term_bit, combo_masks, every))

    def bits(self, present: Iterable[int]) -> int:
        """The bits the term ids in ``present`` set (the argument of :meth:`possible` and :meth:`combos`)."""
        bits = self._bits
        found = 0
        for tid in present:
            found |= bits.get(tid, 0)
        return found

    def possible(self, found: int) -> list[str]:
        """The labels (taxonomy order) with a term among the present ids (``found``: :meth:`bits`) or a combo
        with every group among them."""
        possible = []
        for name, term_bit, combos, every in self._labels:
            if found & every:  # a plain loop: this runs for most articles ("zwei", "Prozent" are combo words)
                if found & term_bit:
                    possible.append(name)
                    continue
                for mask in combos:
                    if found & mask == mask:
                        possible.append(name)
                        break
        return possible

    def combos(self, name: str, found: int) -> list[int]:
        """The numbers of label ``name``'s combos with every group among the present ids: only these can match
        (a group's matcher finds something exactly when one of its terms has a hit)."""
        combos = next(combos for label, _term_bit, combos, _every in self._labels if label == name)
        return [n for n, mask in enumerate(combos) if found & mask == mask]


class CompiledTaxonomy:
    """A taxonomy compiled for matching; build once per worker (``DoFn.setup``)."""

    def __init__(self, taxonomy: Mapping[str, Any]):
        self.version = taxonomy["version"]
        self.labels = taxonomy["labels"]
        self.field_weights = taxonomy["field_weights"]
        self.lead_chars = taxonomy["lead_chars"]
        self.max_term_repeats = taxonomy["max_term_repeats"]
        self.fallbacks = taxonomy.get("language_fallbacks", {})
        self.max_chars = taxonomy.get("max_chars", DEFAULT_MAX_CHARS)
        self._cache: dict[tuple, _Matcher] = {}
        self._bounds: dict[tuple, tuple] = {}  # per (label, language): see _score_bound
        self._by_language: dict[tuple, _Matcher] = {}
        self._exceptions = case_exceptions(_alphabet(_patterns(self.labels)))
        # A few exception characters are found faster by one C substring scan each (``ch in text``,
        # ~0.2 us per 2,600 characters) than by one regex class scan (~13 us); many, by the class.
        self._exception_finder = (re.compile("[" + "".join(re.escape(c) for c in self._exceptions) + "]")
                                  if len(self._exceptions) > 16 else None)
        self._flags = _flags(self._exceptions)
        # Two kinds of automata: the terms that can make a label (terms, combo groups: "primary") are scanned in
        # every field; the context terms (vetoes, requires, context, combos' not_near) only when a label has a
        # positive match. Per language, one table of each (see _primary_for and _context_for).
        every_list = [(is_primary, lists) for spec in self.labels.values() for is_primary, lists in _term_lists(spec)]
        if set(_patterns([lists for _, lists in every_list])) != set(_patterns(self.labels)):
            raise ValueError("_term_lists misses a term list of the taxonomy")  # a new kind of list: add it there
        self._primary = _TermTable(_patterns([lists for is_primary, lists in every_list if is_primary]))
        # Tables by their set of patterns and kind (primary?): languages with the same terms share one.
        self._tables = {(frozenset(self._primary.patterns), True): self._primary}
        self._primary_by_language: dict[str | None, tuple[_TermTable, _LabelGate]] = {}
        self._context_by_language: dict[str | None, _TermTable] = {}

    def _table(self, patterns: set[str], primary: bool) -> _TermTable:
        """The table of exactly ``patterns`` (built once, shared by every language that uses the same): dense
        for the primary terms, which every article's fields are scanned for, compact for the context terms."""
        key = (frozenset(patterns), primary)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = _TermTable(key[0], dense=primary)
        return table

    def _chosen_patterns(self, term_lists: Mapping[str, list], language: str | None) -> set[str]:
        """The patterns a matcher of ``term_lists`` for ``language`` holds (see :meth:`_build_matcher`)."""
        langs = self._languages(term_lists, language) or tuple(term_lists)
        return {t["pattern"] for lang in langs for t in term_lists[lang]}

    def _primary_for(self, language: str | None) -> tuple[_TermTable, "_LabelGate"]:
        """``(table, gate)`` of ``language``: the primary terms its matchers use, in one automaton (a German
        article is not scanned for Polish "stan*" or Romanian "trei la sută"; the whole primary table when that
        is all of them), and the :class:`_LabelGate` that tells from that table's hits which labels can start a
        positive match (:meth:`label` scores only those: same result, less work)."""
        found = self._primary_by_language.get(language)
        if found is not None:
            return found
        used = {name: (self._chosen_patterns(spec["terms"], language),
                       [[self._chosen_patterns(group, language) for group in combo["groups"]]
                        for combo in spec["combos"]])
                for name, spec in self.labels.items()}
        patterns = set().union(*(terms.union(*(g for groups in combos for g in groups))
                                 for terms, combos in used.values()))
        table = self._table(patterns, primary=True)
        found = self._primary_by_language[language] = (table, _LabelGate(table, used))
        return found

    def _context_for(self, language: str | None) -> _TermTable:
        """The table of every context term (not primary) that ``language``'s matchers use and its primary table
        does not hold: a label's context matchers read their hits from these two tables, so a field is scanned
        at most once for all of them, and a term in both kinds of list is verified once (built on first use:
        most articles never reach scoring)."""
        found = self._context_by_language.get(language)
        if found is None:
            primary = self._primary_for(language)[0].ids
            patterns = {p for spec in self.labels.values() for is_primary, lists in _term_lists(spec)
                        if not is_primary for p in self._chosen_patterns(lists, language) if p not in primary}
            found = self._context_by_language[language] = self._table(patterns, primary=False)
        return found

    def text(self, text: str) -> _Text:
        """``text`` analysed once for every matcher (see :class:`_Text`)."""
        return _Text((text or "")[: self.max_chars], self._exceptions, self._exception_finder, self._flags)

    def _languages(self, term_lists: Mapping[str, list], language: str | None) -> tuple[str, ...]:
        """The term lists a language uses, or () for all of them."""
        own = [lang for lang in [language, *self.fallbacks.get(language or "", [])] if lang in term_lists]
        if not language or language not in term_lists:
            # A language without its own list: all lists (its fallbacks alone would be too narrow).
            return ()
        return tuple(dict.fromkeys(own + ([ANY_LANGUAGE] if ANY_LANGUAGE in term_lists else [])))

    def _matcher(self, key: tuple, term_lists: Mapping[str, list], language: str | None) -> _Matcher:
        fast = self._by_language.get((key, language))
        if fast is not None:
            return fast
        self._by_language[(key, language)] = matcher = self._build_matcher(key, term_lists, language)
        return matcher

    def _build_matcher(self, key: tuple, term_lists: Mapping[str, list], language: str | None) -> _Matcher:
        langs = self._languages(term_lists, language)
        primary = self._primary_for(language)[0]
        # A label-making list (terms, combo groups) reads its language's primary table; any other list reads the
        # primary table for the terms it shares with it and the language's context table for the rest.
        # The context table is read term by term: most of its hits are never asked for.
        tables = (primary,) if key[1] in ("terms", "combo") else (primary, self._context_for(language))
        cache_key = (*key, langs, *(id(table) for table in tables))  # languages with the same tables share it
        matcher = self._cache.get(cache_key)
        if matcher is None:
            chosen = langs or tuple(term_lists)
            terms = [t for lang in chosen for t in term_lists[lang]]
            matcher = self._cache[cache_key] = _Matcher(terms, tables, lazy=tables[1:])
        return matcher

    def compile_all(self, languages: Iterable[str | None] = (None,)) -> "CompiledTaxonomy":
        """Compile the matchers for ``languages`` up front (otherwise they compile on first use), and their
        context tables: built in a process that forks its workers (pipeline/worker.py), they are shared."""
        for language in languages:
            self.label("", "", language)
            self.label("x", "x", language)
            self._context_for(language)
        return self

    def _zone(self, match: Mapping[str, Any]) -> str:
        if match["field"] == "body" and match["start"] >= self.lead_chars:
            return "body"
        return "lead" if match["field"] == "body" else "title"

    def _score_bound(self, name: str, language: str | None, table: _TermTable,
                     title_hits: Mapping[int, list[tuple[int, int]]], body_hits: Mapping[int, list[tuple[int, int]]],
                     combos: Iterable[int]) -> float:
        """An upper bound of :meth:`_score_label`'s score of label ``name`` from the primary table's hits (the
        fields' :meth:`_Text.hits` of ``table``): per term of its ``terms`` matcher the weights of its best
        ``max_term_repeats`` hits (each match of a term is one of its hits, in the zone of its start; a leading-*
        term's match starts at its word's start: counted at the highest field weight), per possible combo
        (``combos``) its weight that many times at the highest field weight, and the positive context weights
        that many times at the highest field weight. Vetoes only take matches away, and no term or combo weight
        is negative (validate_taxonomy). The score sums a subset of these products, so it is at most the bound
        (up to float rounding: the caller leaves a margin)."""
        plan = self._bounds.get((name, language))
        if plan is None:
            spec = self.labels[name]
            matcher = self._matcher((name, "terms"), spec["terms"], language)
            weights = {table.ids[p]: (w, p.startswith("*")) for p, w in matcher.terms}
            context = (self._matcher((name, "context"), spec["context"], language).terms if spec["context"] else ())
            top = max(self.field_weights.values())
            plan = self._bounds[(name, language)] = (
                weights, sum(w for _p, w in context if w > 0) * self.max_term_repeats * top, top)
        weights, bound, top = plan
        repeats = self.max_term_repeats
        field_weights, lead_chars = self.field_weights, self.lead_chars
        for tid in {*title_hits, *body_hits}:
            term = weights.get(tid)
            if term is None:
                continue
            weight, star = term
            zones = [field_weights["title"]] * len(title_hits.get(tid, ()))
            for start, _end in body_hits.get(tid, ()):
                zones.append(top if star else field_weights["lead"] if start < lead_chars else field_weights["body"])
            zones.sort(reverse=True)
            bound += weight * sum(zones[:repeats])
        combo_specs = self.labels[name]["combos"]
        for n in combos:
            bound += combo_specs[n]["weight"] * repeats * top
        return bound

    def _score(self, matches: Iterable[Mapping[str, Any]]) -> float:
        counts: dict[str, int] = {}
        score = 0.0
        for m in matches:
            counts[m["term"]] = counts.get(m["term"], 0) + 1
            if counts[m["term"]] <= self.max_term_repeats:
                score += m["weight"] * self.field_weights[self._zone(m)]
        return score

    def _combo_matches(self, name: str, combo: Mapping[str, Any], language: str | None,
                       texts: Mapping[str, str]) -> list[dict[str, Any]]:
        per_group = []
        for j, group in enumerate(combo["groups"]):
            found = _matches(self._matcher((name, "combo", combo["name"], j), group, language), texts)
            if not found:
                return []
            per_group.append(found)
        window = combo["window"]
        same_sentence = combo.get("same_sentence")
        excluded = (_matches(self._matcher((name, "combo-not-near", combo["name"]), combo["not_near"], language),
                             texts) if combo.get("not_near") else [])
        found = []
        for anchor in per_group[0]:
            partners = []
            for others in per_group[1:]:
                near = [m for m in others if _near(anchor, m, window, window)
                        and not (same_sentence and _sentence_end_between(texts[anchor["field"]].text, anchor, m))]
                if not near:
                    break
                partners.append(min(near, key=lambda m: abs(m["start"] - anchor["start"])))
            else:
                parts = [anchor, *partners]
                span = {"field": anchor["field"], "start": min(m["start"] for m in parts),
                        "end": max(m["end"] for m in parts)}
                if any(_near(span, x, window, window) for x in excluded):
                    continue  # a term that must not stand next to the match (another owner) does
                found.append({
                    "term": f"combo:{combo['name']}", "weight": combo["weight"], "field": anchor["field"],
                    "start": min(m["start"] for m in parts), "end": max(m["end"] for m in parts),
                    "parts": parts,
                })
        return found

    def _owner_named(self, name: str, group: Mapping[str, Any], within: Mapping[str, Any], language: str | None,
                     texts: Mapping[str, _Text]) -> bool:
        """An ``owners`` term occurs in title or body with no ``owner_not_near`` term (a comparison that makes
        the member a yardstick) within ``OWNER_NOT_NEAR_CHARS`` characters."""
        owners = _matches(self._matcher((name, "requires-owner", group["name"]), within["owners"], language), texts)
        if not owners or not within.get("owner_not_near"):
            return bool(owners)
        excluded = _matches(self._matcher((name, "requires-owner-not-near", group["name"]), within["owner_not_near"],
                                          language), texts)
        return any(not any(_near(owner, x, OWNER_NOT_NEAR_CHARS, OWNER_NOT_NEAR_CHARS) for x in excluded)
                   for owner in owners)

    def _satisfied_in(self, name: str, group: Mapping[str, Any], positive: list[dict[str, Any]],
                      language: str | None, texts: Mapping[str, _Text]) -> str:
        """A ``requires`` group met by the article itself (``satisfied_in``): its language is listed or an
        ``owners`` term occurs anywhere in title or body, a surviving positive match contains a
        ``positive_with`` term (if given), and no ``unless`` term occurs anywhere in title or body. Returns
        ``'language'``, ``'owner'`` or ``''``."""
        within = group.get("satisfied_in")
        if not within:
            return ""
        if language in within["languages"]:
            how = "language"
        elif within.get("owners") and self._owner_named(name, group, within, language, texts):
            how = "owner"
        else:
            return ""
        if within["positive_with"]:
            words = _matches(self._matcher((name, "requires-with", group["name"]), within["positive_with"], language),
                             texts)
            if not any(w["field"] == m["field"] and w["start"] < m["end"] and m["start"] < w["end"]
                       for m in positive for w in words):
                return ""
        if _matches(self._matcher((name, "requires-unless", group["name"]), within["unless"], language), texts):
            return ""
        return how

    def score_label(self, name: str, title: str, body: str, language: str | None = None) -> dict[str, Any]:
        """Score one label; returns the evidence dict with ``assigned`` and ``reason``."""
        return self._score_label(name, {"title": self.text(title), "body": self.text(body)}, language)

    def _score_label(self, name: str, texts: Mapping[str, _Text], language: str | None,
                     combos: Iterable[int] | None = None) -> dict[str, Any]:
        """:meth:`score_label` of analysed texts. ``combos``: the numbers of the combos that can match (the
        others are known to have a group without a match, see :meth:`_LabelGate.combos`); None: all."""
        spec = self.labels[name]
        positive = _matches(self._matcher((name, "terms"), spec["terms"], language), texts)
        for n in range(len(spec["combos"])) if combos is None else combos:
            positive += self._combo_matches(name, spec["combos"][n], language, texts)
        result = {"label": name, "score": 0.0, "assigned": False, "reason": "no term matched",
                  "positive": positive, "vetoed": [], "context": []}
        if not positive:
            return result
        for i, rule in enumerate(spec["veto"]):
            scope = {f: texts[f] for f in rule["fields"]}
            vetoes = _matches(self._matcher((name, "veto", i), rule["terms"], language), scope)
            if not vetoes:
                continue
            if rule["unless"] and _matches(self._matcher((name, "veto-unless", i), rule["unless"], language), scope):
                continue
            if rule["before"] is None:
                result.update(reason=f"veto {rule['name']}: {vetoes[0]['term']!r}", vetoed=positive, positive=[])
                return result
            keep = []
            for m in positive:
                hit = next((x for x in vetoes if _near(m, x, rule["before"], rule["after"])), None)
                if hit is None:
                    keep.append(m)
                else:
                    result["vetoed"].append({**m, "veto": rule["name"], "veto_term": hit["term"]})
            if rule["cancel"] == "label" and len(keep) < len(positive):
                result.update(reason=f"veto {rule['name']}: {result['vetoed'][-1]['veto_term']!r}",
                              vetoed=result["vetoed"] + keep, positive=[])
                return result
            positive = keep
        result["positive"] = positive
        if not positive:
            result["reason"] = "every match vetoed"
            return result
        for group in spec["requires"]:
            if group.get("satisfied_by") and any(
                    m["term"][len("combo:"):] in group["satisfied_by"] for m in positive
                    if m["term"].startswith("combo:")):
                continue  # a combo that stands for the requirement survived the vetoes
            how = self._satisfied_in(name, group, positive, language, texts)
            if how:
                result["satisfied_in"] = {group["name"]: language if how == "language" else "owner"}
                continue  # the article's language or a member named in it is the owner, and no other state is named
            found = _matches(self._matcher((name, "requires", group["name"]), group["terms"], language), texts)
            if group["window"] is not None:
                # A title match relates to the whole article: it is "near" everything.
                found = [f for f in found if any(
                    "title" in (m["field"], f["field"]) or _near(m, f, group["window"], group["window"])
                    for m in positive)]
            if not found:
                result["reason"] = f"requires {group['name']}: no match"
                return result
        context = (_matches(self._matcher((name, "context"), spec["context"], language), texts)
                   if spec["context"] else [])
        score = self._score(positive) + self._score(context)
        result.update(score=round(score, 3), context=context)
        if score < spec["threshold"]:
            result["reason"] = f"score {score:.2f} < threshold {spec['threshold']}"
            return result
        result.update(assigned=True, reason="assigned")
        return result

    def label(self, title: str | None, body: str | None, language: str | None = None
              ) -> tuple[list[str], list[dict]]:
        """``(labels, evidence)`` for one text; evidence has one entry per assigned label."""
        topics: list[str] = []
        evidence: list[dict[str, Any]] = []
        title_text, body_text = self.text(title), self.text(body)
        table, gate = self._primary_by_language.get(language) or self._primary_for(language)
        firsts = (table.c_first(title_text), table.c_first(body_text))
        if firsts[0] is not None and firsts[1] is not None:
            # The C passes' matches and the terms Python may add to them: when even all of those make no label
            # possible (possible only grows with the bits), the hits left to Python are not checked.
            maybe = 0
            for found_c, _pending, more in firsts:
                maybe |= gate.bits(found_c) | (-1 if more is None else gate.bits(more))
            if not maybe or not gate.possible(maybe):
                return topics, evidence
            title_text._hits[id(table)] = table.c_finish(title_text, firsts[0][0], firsts[0][1])
            body_text._hits[id(table)] = table.c_finish(body_text, firsts[1][0], firsts[1][1])
        # Labels with no term and no complete combo in the article cannot be assigned: they are not scored.
        found = gate.bits(title_text.hits(table)) | gate.bits(body_text.hits(table))
        possible = gate.possible(found) if found else ()
        if not possible:
            return topics, evidence
        texts = {"title": title_text, "body": body_text}
        title_hits, body_hits = title_text.hits(table), body_text.hits(table)
        for name in possible:
            combos = gate.combos(name, found)
            if self._score_bound(name, language, table, title_hits, body_hits, combos) < (
                    self.labels[name]["threshold"] - 1e-9):
                continue  # it cannot reach its threshold: not assigned, whatever its vetoes and requirements
            result = self._score_label(name, texts, language, combos)
            if not result["assigned"]:
                continue
            topics.append(name)
            matches = sorted(result["positive"], key=lambda m: (m["field"] != "title", m["start"]))
            evidence.append({
                "label": name,
                "score": result["score"],
                "terms": sorted({m["term"] for m in matches}),
                "matches": [{"term": m["term"], "field": m["field"], "start": m["start"], "end": m["end"]}
                            for m in matches],
            })
        return topics, evidence


def label_article(article: Mapping[str, Any], taxonomy: CompiledTaxonomy) -> dict[str, Any]:
    """Copy of ``article`` with ``topics``, ``topic_evidence`` and ``taxonomy_version`` set.

    Offsets in the evidence index ``article['title']`` or ``article['body']`` (per match ``field``).
    """
    language = article.get("language")
    topics, evidence = taxonomy.label(article.get("title"), article.get("body"),
                                      None if language in (None, "und") else language)
    labeled = dict(article)
    labeled["topics"] = topics
    labeled["topic_evidence"] = evidence
    labeled["taxonomy_version"] = taxonomy.version
    return labeled


class _LabelTopicsFn(beam.DoFn):
    def __init__(self, taxonomy: Mapping[str, Any]):
        self._taxonomy_data = dict(taxonomy)
        self._taxonomy: CompiledTaxonomy | None = None

    def setup(self):
        self._taxonomy = CompiledTaxonomy(self._taxonomy_data)

    def process(self, article):
        yield label_article(article, self._taxonomy)


class LabelTopics(beam.PTransform):
    """Sets ``topics``, ``topic_evidence`` and ``taxonomy_version`` on every article.

    ``taxonomy`` is the validated data of :func:`load_taxonomy`; regexes are compiled per worker
    (in ``DoFn.setup``, per language on first use) and never pickled.
    """

    def __init__(self, taxonomy: Mapping[str, Any]):
        super().__init__()
        self._taxonomy = dict(taxonomy)

    def expand(self, articles):
        return articles | beam.ParDo(_LabelTopicsFn(self._taxonomy))


__all__ = ["CompiledTaxonomy", "ConfigError", "LabelTopics", "label_article", "load_taxonomy", "term_regex",
           "validate_taxonomy"]
