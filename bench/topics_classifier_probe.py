"""Probe: would a learned classifier beside the rules raise topic recall on fresh text? (issue 14)

Not part of the product and not in the lock: it needs scikit-learn next to newsbeam, e.g.

    python -m venv /tmp/probe && /tmp/probe/bin/pip install scikit-learn -e .
    /tmp/probe/bin/python -m bench.topics_classifier_probe

It trains one logistic regression per label on character 3-5-grams (TF-IDF, `char_wb`, sublinear,
min_df 2, C 10, balanced classes: deterministic) over every labeled set in tests/data except the
test set, then prints on the test set (default: held-out 10, the newest clean slice) precision and
recall of the rules (`configs/topics.yaml`, the product's labeler), of the classifier at several
thresholds, and of "rules OR classifier". Sets with `must`/`must_not` train a label only where it
is stated. Exits 2 without scikit-learn or without the test set. Prints only; writes nothing.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data")
DEFAULT_TEST = os.path.join(DATA, "realnews_heldout10.jsonl")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _pr(pred, gold) -> str:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    precision = f"{tp / (tp + fp):.3f}" if tp + fp else "n/a"
    recall = f"{tp / (tp + fn):.3f}" if tp + fn else "n/a"
    return f"tp {tp:3d} fp {fp:3d} fn {fn:3d}  P {precision}  R {recall}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", default=DEFAULT_TEST, help="labeled JSON-lines test set (default: held-out 10)")
    parser.add_argument("--topics", default="configs/topics.yaml", help="taxonomy of the rules")
    args = parser.parse_args(argv)
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("scikit-learn is not installed (see this module's docstring)", file=sys.stderr)
        return 2
    if not os.path.exists(args.test):
        print(f"no test set {args.test}", file=sys.stderr)
        return 2
    from bench.evaluate_topics import load_examples
    from transforms.topics import CompiledTaxonomy, load_taxonomy

    taxonomy = CompiledTaxonomy(load_taxonomy(args.topics))
    test = load_examples(args.test)
    train = [ex for path in sorted(glob.glob(os.path.join(DATA, "*.jsonl")))
             if os.path.abspath(path) != os.path.abspath(args.test) and "lang_" not in os.path.basename(path)
             for ex in load_examples(path)]
    text = lambda ex: " ".join(filter(None, [ex.get("title"), ex.get("body")]))
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform([text(ex) for ex in train])
    x_test = vectorizer.transform([text(ex) for ex in test])
    rules = [set(taxonomy.label(ex.get("title"), ex.get("body"), ex.get("language"))[0]) for ex in test]
    print(f"train {len(train)} examples, test {len(test)} ({os.path.basename(args.test)})")
    for label in taxonomy.labels:
        rows = [i for i, ex in enumerate(train) if ex["exact"] or label in ex["must"] or label in ex["must_not"]]
        y = [label in train[i]["must"] for i in rows]
        if not any(y):
            continue
        model = LogisticRegression(C=10, max_iter=5000, class_weight="balanced").fit(x_train[rows], y)
        scores = model.predict_proba(x_test)[:, 1]
        gold = [label in ex["must"] for ex in test]
        by_rules = [label in r for r in rules]
        print(f"{label}  (trained on {len(rows)}, {sum(y)} positive)")
        print(f"  rules                  {_pr(by_rules, gold)}")
        for threshold in THRESHOLDS:
            by_model = [s >= threshold for s in scores]
            print(f"  classifier >= {threshold:.1f}      {_pr(by_model, gold)}")
            print(f"  rules OR clf >= {threshold:.1f}    {_pr([r or m for r, m in zip(by_rules, by_model)], gold)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
