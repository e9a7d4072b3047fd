"""MinHash signatures and LSH band keys, vectorized with numpy.

A document is the set of its word ``shingle_size``-grams (words of
``transforms.normalize.content_key``). Each shingle gets a 64-bit hash built
from CRC-32 word hashes (stable across processes and machines, unlike
``hash()``); ``num_perm`` multiply-add hash functions modulo 2**64 give the
minimum per function. Only 16 bits of each minimum are kept (b-bit minwise
hashing, Li & König 2010): two signatures agree on a position with probability
J + (1 - J) / 2**16, so the estimate loses almost nothing while a signature is
``2 * num_perm`` bytes.

Bounded cost on any input (docs/data-safety-inputs.md): a signature is taken over
the first ``max_chars`` characters of the content key only (:data:`MAX_CHARS`,
500,000 characters, about 75,000 words; a news article has a few thousand words at
most), cut back to a word boundary, and
the per-permutation minima are computed over blocks of :data:`BLOCK` shingles, so
the working memory is ``num_perm * BLOCK * 8`` bytes (4 MB) whatever the length.
Texts within the cap get exactly the signature they had without it. Exact dedup
(``content_hash``) still hashes the whole text: only near-dup signatures are capped,
so two long texts that agree on their first ``max_chars`` characters are near duplicates.

LSH: the signature is cut into ``bands`` bands of ``num_perm / bands`` rows;
two documents become candidates when any band is identical. With 128
permutations in 32 bands of 4 rows, a pair with Jaccard 0.8 shares a band with
probability 1 - (1 - 0.8**4)**32 > 0.9999999, a pair with Jaccard 0.1 with
probability 0.003; candidates are then verified on the full signature.
"""

from __future__ import annotations

import zlib

import numpy as np

try:  # the same signatures in C (setup.py builds it when a C compiler is there)
    from transforms._minhash_signature import signature as _signature
except ImportError:
    _signature = None

_BITS = 16
_MASK = np.uint64((1 << _BITS) - 1)
# Characters of a content key a signature covers (the rest is ignored by near-dup only).
MAX_CHARS = 500_000
# Shingles hashed per step: bounds the (num_perm, BLOCK) uint64 working array.
BLOCK = 4096
_SHIFT = np.uint64(32)
# Odd multipliers that spread the word hashes of a shingle over 64 bits (splitmix64 constants).
_POSITION_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                         0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9)


class MinHasher:
    """Computes signatures for one parameter set; build once per worker."""

    def __init__(self, num_perm: int = 128, shingle_size: int = 3, bands: int = 32, seed: int = 1,
                 max_chars: int = MAX_CHARS):
        if num_perm % bands:
            raise ValueError(f"bands ({bands}) must divide num_perm ({num_perm})")
        if not 1 <= shingle_size <= len(_POSITION_MULTIPLIERS):
            raise ValueError(f"shingle_size must be 1..{len(_POSITION_MULTIPLIERS)}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.bands = bands
        self.rows = num_perm // bands
        self.max_chars = max_chars
        self._a = (rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)).reshape(-1, 1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64).reshape(-1, 1)
        self._position = np.array(_POSITION_MULTIPLIERS[:shingle_size], dtype=np.uint64)
        self._a_flat, self._b_flat = self._a.ravel().copy(), self._b.ravel().copy()  # for the C path

    def capped(self, key: str) -> str:
        """The part of ``key`` a signature covers: its first ``max_chars`` characters, cut back to
        the last whole word (a key whose first word is longer keeps ``max_chars`` of it)."""
        if len(key) <= self.max_chars:
            return key
        cut = key.rfind(" ", 0, self.max_chars + 1)
        return key[:cut] if cut > 0 else key[:self.max_chars]

    def shingle_hashes(self, key: str, words: list[bytes] | None = None) -> np.ndarray:
        """Hashes of the word shingles of ``capped(key)``.

        ``words``: ``key.encode("utf-8").split()`` when the caller has it
        (``transforms.text.content_key_words``); used when the key is within the cap."""
        # Encode once and split the bytes: the words of a content_key are separated by single
        # spaces, and UTF-8 continuation bytes are never ASCII whitespace, so these are exactly the
        # UTF-8 words; map() keeps the per-word CRC-32 calls in C (same values as before).
        if words is None or len(key) > self.max_chars:
            words = self.capped(key).encode("utf-8").split()
        if not words:
            return np.zeros(1, dtype=np.uint64)
        hashes = np.array(list(map(zlib.crc32, words)), dtype=np.uint64)
        k = min(self.shingle_size, len(hashes))
        n = len(hashes) - k + 1
        # uint64 array arithmetic wraps modulo 2**64 without a warning (numpy warns on scalars only).
        shingles = hashes[:n] * self._position[0]
        for j in range(1, k):
            shingles += hashes[j:j + n] * self._position[j]
        shingles ^= shingles >> np.uint64(31)
        return shingles

    def signature(self, key: str, words: list[bytes] | None = None) -> bytes:
        """``num_perm`` 16-bit minima of the shingle set of ``key`` (a content_key), as bytes.

        ``words``: optional, ``key.encode("utf-8").split()`` (see :meth:`shingle_hashes`).
        Computed in C when the extension is built (``transforms/_minhash_signature.c``: the same
        arithmetic, ~4x faster), else on numpy (:meth:`signature_numpy`)."""
        if _signature is None:
            return self.signature_numpy(key, words)
        if words is None or len(key) > self.max_chars:
            words = self.capped(key).encode("utf-8").split()
        return _signature(words, self._a_flat, self._b_flat, self._position)

    def signature_numpy(self, key: str, words: list[bytes] | None = None) -> bytes:
        """:meth:`signature` on numpy arrays (the reference the C path is tested against)."""
        shingles = self.shingle_hashes(key, words)
        if len(shingles) <= BLOCK:  # one block (every news article): no loop, no running minimum
            work = self._a * shingles
            work += self._b
            minima = work.min(axis=1)
        else:
            minima = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
            work = np.empty((self.num_perm, BLOCK), dtype=np.uint64)
            for start in range(0, len(shingles), BLOCK):
                block = shingles[start:start + BLOCK]
                out = work[:, :len(block)]
                np.multiply(self._a, block, out=out)
                np.add(out, self._b, out=out)
                np.minimum(minima, out.min(axis=1), out=minima)
        # bits 32..47: astype to 16 bits keeps the low 16 bits of the shifted value
        return (minima >> _SHIFT).astype("<u2").tobytes()

    def band_keys(self, signature: bytes) -> list[bytes]:
        """One key per band: the band number (2 bytes) plus that band's rows (``2 * rows`` bytes)."""
        width = self.rows * 2
        return [band.to_bytes(2, "big") + signature[band * width:(band + 1) * width] for band in range(self.bands)]


def similarity(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures, corrected for 16-bit collisions."""
    a = np.frombuffer(sig_a, dtype="<u2")
    b = np.frombuffer(sig_b, dtype="<u2")
    agree = float(np.count_nonzero(a == b)) / len(a)
    chance = 1.0 / (1 << _BITS)
    return max(0.0, (agree - chance) / (1.0 - chance))


def jaccard(key_a: str, key_b: str, shingle_size: int) -> float:
    """Exact Jaccard similarity of the word-shingle sets (for evaluation and tests)."""
    def shingles(key):
        words = key.split()
        k = min(shingle_size, len(words)) or 1
        return {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}
    a, b = shingles(key_a), shingles(key_b)
    return len(a & b) / len(a | b) if a | b else 1.0


def minhasher(params) -> MinHasher:
    """The MinHasher of a profile's ``dedup`` section."""
    return MinHasher(params["num_perm"], params["shingle_size"], params["bands"], params["seed"])
