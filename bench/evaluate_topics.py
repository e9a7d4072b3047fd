"""Evaluation of the topic labeler: precision/recall on labeled sets, off-topic rate on 10kGNAD.

Pure functions over plain records; ``newsbeam eval`` (pipeline/commands/eval.py) prints them.

Labeled sets are JSON lines, one example per line:
  * ``{"id", "lang", "title", "body", "labels": [...]}``: ``labels`` is the exact label set
    (every other label must not fire); or
  * ``{"id", "lang", "title", "body", "must": [...], "must_not": [...]}`` (labels not named are
    not scored); or
  * ``{"id", "file": "seeds/000_....txt", "must": [...], "must_not": [...]}``: a seed file, read
    with the pipeline's own reader; ``file`` is resolved against the set's folder and its parents.
Examples without ``lang`` get their language from the pipeline's language detector.

10kGNAD (``category;'text'``, German derStandard articles): articles in the off-topic
categories must get no label; labels in the other categories are listed for eyeballing.
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import Any, Iterable, Mapping

from transforms.topics import CompiledTaxonomy

OFF_TOPIC_CATEGORIES = ("Sport", "Kultur", "Web", "Wissenschaft", "Etat")


class EvalDataError(ValueError):
    """A labeled set is malformed."""


def _resolve(file: str, base_dir: str) -> str:
    candidates = [os.path.join(base_dir, file), os.path.join(os.path.dirname(base_dir), file)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise EvalDataError(f"example file {file!r} not found next to {base_dir}")


def load_examples(path: str, tagger=None) -> list[dict[str, Any]]:
    """Read a labeled JSON-lines set into ``{id, set, title, body, language, must, must_not}`` records."""
    from transforms.read import file_to_item

    base_dir = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    examples = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise EvalDataError(f"{path}:{lineno}: not JSON: {err}") from err
            if "file" in raw:
                with open(_resolve(raw["file"], base_dir), "rb") as f:
                    item = file_to_item(f.read(), raw["file"], "eval", 200)
                title, body = item["title"], item["body"]
            elif "body" in raw:
                title, body = raw.get("title"), raw["body"]
            else:
                raise EvalDataError(f"{path}:{lineno}: an example needs 'body' or 'file'")
            if "labels" in raw:
                must, must_not, exact = list(raw["labels"]), [], True
            elif "must" in raw:
                must, must_not, exact = list(raw["must"]), list(raw.get("must_not", [])), False
            else:
                raise EvalDataError(f"{path}:{lineno}: an example needs 'labels' or 'must'/'must_not'")
            language = raw.get("lang")
            if not language and tagger is not None:
                language = tagger.tag(title, body)[0]
            examples.append({"id": str(raw.get("id", lineno)), "set": name, "title": title, "body": body,
                             "language": language, "must": must, "must_not": must_not, "exact": exact})
    return examples


def evaluate(taxonomy: CompiledTaxonomy, examples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-label tp/fp/fn, precision, recall and the list of errors (with evidence)."""
    labels = list(taxonomy.labels)
    counts = {label: {"tp": 0, "fp": 0, "fn": 0} for label in labels}
    by_language: dict[str, dict[str, dict[str, int]]] = {}
    errors = []
    n = 0
    for ex in examples:
        n += 1
        language = None if ex.get("language") in (None, "und") else ex["language"]
        lang_counts = by_language.setdefault(language or "und",
                                             {label: {"tp": 0, "fp": 0, "fn": 0} for label in labels})
        predicted, evidence = taxonomy.label(ex.get("title"), ex.get("body"), language)
        scored_negative = set(labels) - set(ex["must"]) if ex["exact"] else set(ex["must_not"])
        for label in labels:
            got = label in predicted
            if label in ex["must"]:
                counts[label]["tp" if got else "fn"] += 1
                lang_counts[label]["tp" if got else "fn"] += 1
                if not got:
                    detail = taxonomy.score_label(label, ex.get("title") or "", ex.get("body") or "", language)
                    errors.append({"id": ex["id"], "set": ex["set"], "kind": "missed", "label": label,
                                   "why": detail["reason"], "score": detail["score"],
                                   "title": ex.get("title") or (ex.get("body") or "")[:80]})
            elif label in scored_negative and got:
                counts[label]["fp"] += 1
                lang_counts[label]["fp"] += 1
                ev = next(e for e in evidence if e["label"] == label)
                errors.append({"id": ex["id"], "set": ex["set"], "kind": "false positive", "label": label,
                               "why": ", ".join(ev["terms"]), "score": ev["score"],
                               "title": ex.get("title") or (ex.get("body") or "")[:80]})
    return {"examples": n, "labels": {label: _rates(c) for label, c in counts.items()},
            "languages": {lang: {label: _rates(c) for label, c in per.items()}
                          for lang, per in sorted(by_language.items())},
            "errors": errors}


def _rates(c: Mapping[str, int]) -> dict[str, Any]:
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    return {**c, "precision": precision, "recall": recall}


def targets_met(result: Mapping[str, Any], minimum: float = 0.95, min_positives: int = 5) -> list[str]:
    """The (label or language, label) cells with >= ``min_positives`` positives below ``minimum`` P or R."""
    failed = []
    cells = [(label, c) for label, c in result["labels"].items()]
    cells += [(f"{lang}/{label}", c) for lang, per in result["languages"].items() for label, c in per.items()]
    for name, c in cells:
        if c["tp"] + c["fn"] < min_positives:
            continue
        if (c["precision"] or 0) < minimum or (c["recall"] or 0) < minimum:
            failed.append(f"{name} P={_pct(c['precision']).strip()} R={_pct(c['recall']).strip()}")
    return failed


def read_gnad(path: str) -> list[dict[str, str]]:
    """10kGNAD rows ``category;'text'`` -> ``[{category, text}]``."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter=";", quotechar="'"):
            if len(row) >= 2:
                rows.append({"category": row[0], "text": ";".join(row[1:])})
    return rows


def off_topic_report(taxonomy: CompiledTaxonomy, rows: Iterable[Mapping[str, str]], language: str | None = "de",
                     off_topic: Iterable[str] = OFF_TOPIC_CATEGORIES) -> dict[str, Any]:
    """Share of off-topic articles with any label, and the labeled articles of every category."""
    off_topic = set(off_topic)
    total = {"off_topic": 0, "other": 0}
    per_category: dict[str, dict[str, int]] = {}
    hits = []
    started = time.perf_counter()
    chars = 0
    for i, row in enumerate(rows):
        chars += len(row["text"])
        topics, evidence = taxonomy.label(None, row["text"], language)
        group = "off_topic" if row["category"] in off_topic else "other"
        total[group] += 1
        cat = per_category.setdefault(row["category"], {"articles": 0, "labeled": 0})
        cat["articles"] += 1
        if topics:
            cat["labeled"] += 1
            hits.append({"row": i, "category": row["category"], "off_topic": group == "off_topic",
                         "topics": topics, "terms": {e["label"]: e["terms"] for e in evidence},
                         "scores": {e["label"]: e["score"] for e in evidence},
                         "snippet": row["text"][:160]})
    elapsed = time.perf_counter() - started
    off_hits = sum(1 for h in hits if h["off_topic"])
    return {
        "off_topic_articles": total["off_topic"],
        "off_topic_labeled": off_hits,
        "off_topic_rate": off_hits / total["off_topic"] if total["off_topic"] else None,
        "per_category": per_category,
        "hits": hits,
        "articles": total["off_topic"] + total["other"],
        "ms_per_article": 1000 * elapsed / max(1, total["off_topic"] + total["other"]),
        "chars_per_article": chars / max(1, total["off_topic"] + total["other"]),
    }


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def format_scores(title: str, result: Mapping[str, Any]) -> str:
    lines = [f"{title}: {result['examples']} examples",
             f"  {'label':26} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}"]
    for label, c in result["labels"].items():
        lines.append(f"  {label:26} {c['tp']:4} {c['fp']:4} {c['fn']:4} {_pct(c['precision']):>10} "
                     f"{_pct(c['recall']):>8}")
    labels = list(result["labels"])
    lines.append("  per language (tp/fp/fn, precision, recall):")
    lines.append(f"  {'lang':5}" + "".join(f" {label[:24]:>30}" for label in labels))
    for lang, per in result.get("languages", {}).items():
        cells = []
        for label in labels:
            c = per[label]
            cells.append(f"{c['tp']:3}/{c['fp']}/{c['fn']} {_pct(c['precision'])} {_pct(c['recall'])}")
        lines.append(f"  {lang:5}" + "".join(f" {cell:>30}" for cell in cells))
    if result["errors"]:
        lines.append("  errors:")
        for e in result["errors"]:
            lines.append(f"    [{e['set']} {e['id']}] {e['kind']} {e['label']} (score {e['score']}; {e['why']}): "
                         f"{(e['title'] or '')[:70]}")
    else:
        lines.append("  errors: none")
    return "\n".join(lines)


def markdown_scores(name: str, result: Mapping[str, Any]) -> str:
    """A Markdown table: one row per language and one for all, P/R (tp/fp/fn) per label."""
    labels = list(result["labels"])
    head = "| " + name + " | " + " | ".join(labels) + " |"
    lines = [head, "|---|" + "---|" * len(labels)]

    def cell(c):
        return f"{_pct(c['precision']).strip()} / {_pct(c['recall']).strip()} ({c['tp']}/{c['fp']}/{c['fn']})"
    for lang, per in result.get("languages", {}).items():
        lines.append(f"| {lang} | " + " | ".join(cell(per[label]) for label in labels) + " |")
    lines.append(f"| **all ({result['examples']})** | " + " | ".join(cell(result["labels"][label]) for label in labels)
                 + " |")
    return "\n".join(lines)


def format_off_topic(result: Mapping[str, Any], sample: int = 15) -> str:
    lines = [f"10kGNAD: {result['articles']} articles, {result['ms_per_article']:.2f} ms per article "
             f"({result['chars_per_article']:.0f} chars on average)",
             f"  off-topic rate (categories {', '.join(OFF_TOPIC_CATEGORIES)}): {result['off_topic_labeled']}/"
             f"{result['off_topic_articles']} = {_pct(result['off_topic_rate']).strip()}"]
    for cat, c in sorted(result["per_category"].items()):
        marker = " (off-topic)" if cat in OFF_TOPIC_CATEGORIES else ""
        lines.append(f"  {cat:14} {c['labeled']:4} of {c['articles']:4} labeled{marker}")
    off = [h for h in result["hits"] if h["off_topic"]]
    other = [h for h in result["hits"] if not h["off_topic"]]
    if off:
        lines.append("  off-topic articles with a label:")
        lines += [f"    #{h['row']} {h['category']}: {h['topics']} {h['terms']} | {h['snippet'][:100]}" for h in off]
    if other:
        lines.append(f"  labeled articles in other categories (first {min(sample, len(other))} of {len(other)}):")
        lines += [f"    #{h['row']} {h['category']}: {h['topics']} {h['terms']} | {h['snippet'][:100]}"
                  for h in other[:sample]]
    return "\n".join(lines)
