"""Issue 16: to_article CPU time per bench article, previous vs current content_key and signature.

Both run in this one process, interleaved, several rounds (the machine is shared). The previous code
is the frozen copy in tests/test_content_key_equivalence.py; the outputs are compared as well.

    .venv/bin/python bench/normalize_speed.py /work/main/bench/work/corpus-*/articles [n_files] [rounds]
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time



def main(folder: str, n_files: int = 3000, rounds: int = 5) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import transforms.normalize as normalize
    from test_content_key_equivalence import old_content_key, old_signature  # the frozen previous code
    from transforms.common import RunInfo
    from transforms.minhash import MinHasher
    from transforms.read import file_to_item

    items = []
    for name in sorted(os.listdir(folder))[:n_files]:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as handle:
                items.append(file_to_item(handle.read(), path, "bench", 300))
        except Exception:  # noqa: BLE001 - skip files read rejects
            continue
    run = RunInfo(run_id="bench", ingested_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    hasher = MinHasher()
    current_key = normalize.content_key_words
    variants = {
        "previous": (lambda title, body: (old_content_key(title, body), None),
                     lambda key, words: old_signature(hasher, key)),
        "current": (current_key, hasher.signature),
    }
    outputs = {}
    for name, (key_fn, signer) in variants.items():
        normalize.content_key_words = key_fn
        outputs[name] = [normalize.to_article(item, run, signer=signer) for item in items]
    assert outputs["previous"] == outputs["current"], "articles differ"
    print(f"{len(items)} articles, identical output")
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (key_fn, signer) in variants.items():
            normalize.content_key_words = key_fn
            start = time.process_time()
            for item in items:
                normalize.to_article(item, run, signer=signer)
            times[name].append((time.process_time() - start) / len(items) * 1e6)
    normalize.content_key_words = current_key
    for name, values in times.items():
        print(f"{name:9s} µs/article CPU: " + " ".join(f"{v:.0f}" for v in values) + f"  (min {min(values):.0f})")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not 1 <= len(args) <= 3 or not os.path.isdir(args[0]) or not all(a.isdigit() for a in args[1:]):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        print("needs the bench corpus's articles folder (make bench creates it; ../shared/corpora)", file=sys.stderr)
        sys.exit(2)
    main(args[0], *(int(a) for a in args[1:]))
