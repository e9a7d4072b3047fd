"""Bounded cost on any input: the near-dup signature covers a capped prefix of the content key,
computed in fixed-size blocks; the stored body and exact dedup use the whole text.

The 5 MB single-line article is a correctness test through the real run command (no timing
asserts; memory and time figures are in docs/data-safety-inputs.md).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import duckdb
import numpy as np
import pytest

from conftest import PROJECT
from transforms.common import stable_hash
from transforms.minhash import BLOCK, MAX_CHARS, MinHasher, jaccard, similarity
from transforms.normalize import content_key, normalize_text

def _words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgk"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(20_000)]
    return [rng.choice(vocab) for _ in range(n)]


def _one_shot(hasher: MinHasher, key: str) -> bytes:
    """The signature as computed before blocks existed: one (num_perm, shingles) matrix."""
    shingles = hasher.shingle_hashes(key)
    with np.errstate(over="ignore"):
        minima = (hasher._a * shingles + hasher._b).min(axis=1)
    return ((minima >> np.uint64(32)) & np.uint64(0xFFFF)).astype("<u2").tobytes()


@pytest.mark.parametrize("n_words", [0, 1, 2, 3, 50, BLOCK - 1, BLOCK + 2, 3 * BLOCK + 17])
def test_blocked_signature_equals_the_one_shot_formula(n_words):
    hasher = MinHasher(128, 3, 32, 1)
    key = " ".join(_words(n_words, n_words))
    assert hasher.signature(key) == _one_shot(hasher, key)


def test_signature_covers_the_capped_prefix_only():
    hasher = MinHasher(64, 3, 16, 1, max_chars=1_000)
    key = " ".join(_words(2_000, 1))
    capped = hasher.capped(key)
    assert len(capped) <= 1_000 and key.startswith(capped) and key[len(capped)] == " "  # whole words
    assert hasher.signature(key) == hasher.signature(capped) == _one_shot(hasher, capped)
    # a different tail after the cap does not change the signature; a different start does
    assert hasher.signature(capped + " other words entirely") == hasher.signature(key)
    assert hasher.signature("changed " + key) != hasher.signature(key)
    # a key without a space within the cap keeps max_chars of its first word
    assert hasher.capped("x" * 5_000) == "x" * 1_000
    short = " ".join(_words(100, 2))
    assert hasher.capped(short) == short


def test_capped_signatures_still_estimate_similarity():
    hasher = MinHasher(128, 3, 32, 1, max_chars=2_000)
    base = _words(400, 3)
    edited = list(base)
    for i in range(0, 400, 40):
        edited[i] = "edited"
    a, b = " ".join(base), " ".join(edited)
    assert len(a) < 2_000 * 2
    truth = jaccard(hasher.capped(a), hasher.capped(b), 3)
    assert abs(similarity(hasher.signature(a), hasher.signature(b)) - truth) < 0.15


def test_max_chars_is_validated():
    with pytest.raises(ValueError, match="max_chars"):
        MinHasher(max_chars=0)


# -- one 5 MB single-line article through the real run command ----------------------------------

def _run_cli(pattern: str, output) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--input", pattern, "--output", str(output), "--json"],
        cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)}, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """Three ~4.9 MB single-line articles: ``big`` and an exact copy of it; ``tail`` has the
    same first 600,000 characters but a different rest (so the same capped signature)."""
    folder = tmp_path_factory.mktemp("big-in")
    words = _words(660_000, 12)
    text = " ".join(words) + "."
    other = " ".join(_words(660_000, 13))
    cut = text.index(" ", 600_000)
    tail = text[:cut] + " " + other[: len(text) - cut - 1]
    assert len(text.encode()) <= 5_000_000 and len(tail.encode()) <= 5_000_000
    (folder / "big.txt").write_text(text, encoding="utf-8")
    (folder / "big-copy.txt").write_text(text, encoding="utf-8")
    (folder / "tail.txt").write_text(tail, encoding="utf-8")
    output = tmp_path_factory.mktemp("big-out")
    return {"big": text, "tail": tail}, folder, output, _run_cli(str(folder / "*.txt"), output)


def test_a_5mb_article_is_stored_whole_and_deduplicated(big_run):
    texts, folder, output, manifest = big_run
    c = manifest["counters"]
    assert manifest["status"] == "committed" and c["balanced"] is True
    assert (c["inputs"], c["articles"], c["duplicates"], c["dead_letters"]) == (3, 1, 2, 0)
    with duckdb.connect() as con:
        (body, text_length, content_hash, origin), = con.sql(
            f"SELECT body, text_length, content_hash, origin FROM read_parquet('{output}/articles/**/*.parquet')"
        ).fetchall()
        dups = dict(con.sql(f"SELECT origin, method FROM read_parquet('{output}/duplicates/**/*.parquet')")
                    .fetchall())
    kept = "tail" if origin.endswith("tail.txt") else "big"
    # the whole body is stored (not the capped prefix) and exact dedup hashed the whole text
    assert body == normalize_text(texts[kept]) and text_length == len(body)
    assert content_hash == stable_hash("text:" + content_key(None, texts[kept]))
    assert content_hash != stable_hash("text:" + content_key(None, texts["tail" if kept == "big" else "big"]))
    assert sorted([origin, *dups]) == sorted(str(folder / n) for n in ("big.txt", "big-copy.txt", "tail.txt"))
    # one of big.txt / big-copy.txt is an exact duplicate of the other (same content, same article_id);
    # tail.txt and big.txt differ only after the cap: near duplicates, the documented consequence of
    # the cap (docs/data-safety-inputs.md)
    methods = sorted(dups.values())
    assert methods[0] in ("content_hash", "id") and methods[1] == "minhash", dups
    assert len(content_key(None, texts["big"])) > MAX_CHARS
