"""Step 5: label topics from the taxonomy in ``configs/topics.yaml``.

Core: :func:`load_taxonomy` validates the YAML into plain data,
:class:`CompiledTaxonomy` compiles it once (one alternation regex per label and
language), and :meth:`CompiledTaxonomy.label` scores an article.

Term syntax: case-insensitive words or phrases; ``*`` stands for any run of
letters (``sanktion*`` matches "Sanktionen" and "Sanktionspaket",
``*ausgaben`` matches "Verteidigungsausgaben"); a space matches any run of
whitespace or hyphens. Terms match on word boundaries only, so "nato" never
matches inside "Senatoren".

Score of a label = sum over matched terms of ``weight x field weight`` (title,
lead, body), counting each term at most ``max_term_repeats`` times. A label is
assigned when its score reaches ``threshold``, every ``requires`` group has a
match, and no ``veto`` term matched. ``context`` terms with negative weight
lower the score. Adding a label is a YAML change only.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import apache_beam as beam

from pipeline.config import ConfigError, Validator, load_yaml, resolve_config_path

ANY_LANGUAGE = "any"
KINDS = ("terms", "context", "veto")


# -- loading and validation ---------------------------------------------------

def _validate_term_lists(v: Validator, value: Any, path: str) -> dict[str, list[dict[str, Any]]]:
    """``{lang: [pattern | {pattern, weight}]}`` -> ``{lang: [{pattern, weight}]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lang, terms in v.mapping(value, path).items():
        if not isinstance(terms, list) or not terms:
            v.fail(f"{path}.{lang}", "expected a non-empty list of terms")
        parsed = []
        for i, term in enumerate(terms):
            where = f"{path}.{lang}[{i}]"
            if isinstance(term, str):
                term = {"pattern": term}
            term = v.mapping(term, where, {"pattern", "weight"})
            pattern = v.string(term.get("pattern"), f"{where}.pattern")
            weight = v.number(term.get("weight", 1.0), f"{where}.weight")
            parsed.append({"pattern": pattern.strip().lower(), "weight": float(weight)})
        out[str(lang)] = parsed
    return out


def validate_taxonomy(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    v = Validator(source)
    v.mapping(data, "taxonomy", {"version", "field_weights", "lead_chars", "max_term_repeats", "labels"})
    version = v.string(str(data.get("version", "")) or None, "version")
    weights = v.mapping(data.get("field_weights", {"title": 2.0, "lead": 1.5, "body": 1.0}), "field_weights",
                        {"title", "lead", "body"})
    for key in ("title", "lead", "body"):
        v.number(weights.get(key, 1.0), f"field_weights.{key}", 0)
    lead_chars = v.integer(data.get("lead_chars", 400), "lead_chars", 0)
    max_repeats = v.integer(data.get("max_term_repeats", 3), "max_term_repeats", 1)
    labels_in = v.mapping(data.get("labels"), "labels")
    if not labels_in:
        v.fail("labels", "at least one label is required")
    labels = {}
    for name, spec in labels_in.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            v.fail(f"labels.{name}", "label names are lower_snake_case")
        path = f"labels.{name}"
        spec = v.mapping(spec, path, {"description", "threshold", "terms", "context", "veto", "requires"})
        description = v.string(spec.get("description"), f"{path}.description")
        threshold = v.number(spec.get("threshold"), f"{path}.threshold", 0)
        label = {
            "description": description.strip(),
            "threshold": float(threshold),
            "terms": _validate_term_lists(v, spec.get("terms"), f"{path}.terms"),
            "context": _validate_term_lists(v, spec["context"], f"{path}.context") if "context" in spec else {},
            "veto": _validate_term_lists(v, spec["veto"], f"{path}.veto") if "veto" in spec else {},
            "requires": [],
        }
        for i, group in enumerate(spec.get("requires") or []):
            gpath = f"{path}.requires[{i}]"
            group = v.mapping(group, gpath, {"name", "terms"})
            label["requires"].append({
                "name": v.string(group.get("name"), f"{gpath}.name"),
                "terms": _validate_term_lists(v, group.get("terms"), f"{gpath}.terms"),
            })
        labels[str(name)] = label
    return {
        "version": version,
        "field_weights": {k: float(weights.get(k, 1.0)) for k in ("title", "lead", "body")},
        "lead_chars": lead_chars,
        "max_term_repeats": max_repeats,
        "labels": labels,
    }


def load_taxonomy(path: str) -> dict[str, Any]:
    """Read and validate a taxonomy file into plain (picklable) data."""
    return validate_taxonomy(load_yaml(path), resolve_config_path(path))


# -- compiling and matching ---------------------------------------------------

def term_regex(pattern: str) -> str:
    """Regex source for one term: ``*`` = letters, space = space/hyphen run, word boundaries."""
    parts = []
    for token in re.split(r"(\*|\s+)", pattern):
        if token == "*":
            parts.append(r"\w*")
        elif token and token.isspace():
            parts.append(r"[\s\-]+")
        elif token:
            parts.append(re.escape(token))
    return r"(?<!\w)" + "".join(parts) + r"(?!\w)"


class _Matcher:
    """One alternation regex over a list of terms; maps each match back to its term."""

    def __init__(self, terms: list[dict[str, Any]]):
        # Longer patterns first, so the most specific alternative wins at a position.
        unique: dict[str, float] = {}
        for term in terms:
            unique.setdefault(term["pattern"], term["weight"])
        self.terms = sorted(unique.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        source = "|".join(f"(?P<t{i}>{term_regex(p)})" for i, (p, _) in enumerate(self.terms))
        self.regex = re.compile(source, re.IGNORECASE) if self.terms else None

    def find(self, text: str) -> Iterable[tuple[str, float, int, int]]:
        if not self.regex or not text:
            return
        for match in self.regex.finditer(text):
            pattern, weight = self.terms[int(match.lastgroup[1:])]
            yield pattern, weight, match.start(), match.end()


def _terms_for(term_lists: Mapping[str, list], language: str | None) -> list[dict[str, Any]]:
    if language and language in term_lists:
        return list(term_lists[language]) + list(term_lists.get(ANY_LANGUAGE, []))
    return [t for terms in term_lists.values() for t in terms]


class CompiledTaxonomy:
    """A taxonomy compiled for matching; build once per worker (``DoFn.setup``)."""

    def __init__(self, taxonomy: Mapping[str, Any]):
        self.version = taxonomy["version"]
        self.labels = taxonomy["labels"]
        self.field_weights = taxonomy["field_weights"]
        self.lead_chars = taxonomy["lead_chars"]
        self.max_term_repeats = taxonomy["max_term_repeats"]
        self._cache: dict[tuple[str, str, str], _Matcher] = {}

    def _matcher(self, label: str, kind: str, language: str | None, term_lists: Mapping[str, list]) -> _Matcher:
        # Languages without their own list share the all-languages matcher.
        lang_key = language if language in term_lists else "*"
        key = (label, kind, lang_key)
        if key not in self._cache:
            self._cache[key] = _Matcher(_terms_for(term_lists, language))
        return self._cache[key]

    def _matches(self, matcher: _Matcher, title: str, body: str) -> list[dict[str, Any]]:
        found = []
        for field, text in (("title", title), ("body", body)):
            for pattern, weight, start, end in matcher.find(text):
                zone = "lead" if field == "body" and start < self.lead_chars else field
                found.append({"term": pattern, "field": field, "zone": zone, "weight": weight,
                              "start": start, "end": end})
        return found

    def _score(self, matches: list[dict[str, Any]]) -> float:
        counts: dict[str, int] = {}
        score = 0.0
        for m in matches:
            counts[m["term"]] = counts.get(m["term"], 0) + 1
            if counts[m["term"]] <= self.max_term_repeats:
                score += m["weight"] * self.field_weights[m["zone"]]
        return score

    def label(self, title: str | None, body: str | None, language: str | None = None) -> tuple[list[str], list[dict]]:
        """``(labels, evidence)`` for one text; evidence has one entry per assigned label."""
        title = title or ""
        body = body or ""
        topics: list[str] = []
        evidence: list[dict[str, Any]] = []
        for name, spec in self.labels.items():
            positive = self._matches(self._matcher(name, "terms", language, spec["terms"]), title, body)
            if not positive:
                continue
            if spec["veto"] and self._matches(self._matcher(name, "veto", language, spec["veto"]), title, body):
                continue
            if any(
                not self._matches(self._matcher(name, f"requires:{group['name']}", language, group["terms"]), title, body)
                for group in spec["requires"]
            ):
                continue
            context = (
                self._matches(self._matcher(name, "context", language, spec["context"]), title, body)
                if spec["context"] else []
            )
            score = self._score(positive) + self._score(context)
            if score < spec["threshold"]:
                continue
            topics.append(name)
            evidence.append({
                "label": name,
                "score": round(score, 3),
                "terms": sorted({m["term"] for m in positive}),
                "matches": [{"term": m["term"], "field": m["field"], "start": m["start"], "end": m["end"]}
                            for m in positive],
            })
        return topics, evidence


def label_article(article: Mapping[str, Any], taxonomy: CompiledTaxonomy) -> dict[str, Any]:
    """Copy of ``article`` with ``topics``, ``topic_evidence`` and ``taxonomy_version`` set."""
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

    ``taxonomy`` is the validated data of :func:`load_taxonomy`; regexes are compiled per worker.
    """

    def __init__(self, taxonomy: Mapping[str, Any]):
        super().__init__()
        self._taxonomy = dict(taxonomy)

    def expand(self, articles):
        return articles | beam.ParDo(_LabelTopicsFn(self._taxonomy))


__all__ = ["CompiledTaxonomy", "ConfigError", "LabelTopics", "label_article", "load_taxonomy", "term_regex"]
