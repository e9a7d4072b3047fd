"""What every step shares: the run context, dead-letter records and stable hashing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from schemas import SCHEMA_VERSION

#: Tag of the side output that carries dead letters in every step.
DEAD_LETTER = "dead_letter"


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Identity of one run; stamped on every row it writes."""

    run_id: str
    ingested_at: dt.datetime  # timezone-aware UTC

    @property
    def ingested_date(self) -> dt.date:
        return self.ingested_at.astimezone(dt.timezone.utc).date()


def stable_hash(text: str, digest_size: int = 16) -> str:
    """Hex digest that is the same on every machine and run (unlike ``hash()``)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=digest_size).hexdigest()


def stable_int(text: str) -> int:
    """A 64-bit integer derived from ``text``, stable across processes (for sharding)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def dead_letter(
    *,
    source: str,
    origin: str,
    stage: str,
    error: str,
    raw: bytes | str | None,
    run: RunInfo,
    payload_cap: int,
    raw_size: int | None = None,
) -> dict[str, Any]:
    """A dead-letter record: the raw payload (capped) and why it could not become an article."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return {
        "source": source,
        "origin": origin,
        "stage": stage,
        "error": error,
        "raw": None if raw is None else bytes(raw[:payload_cap]),
        "raw_size": raw_size if raw_size is not None else (None if raw is None else len(raw)),
        "ingested_at": run.ingested_at,
        "ingested_date": run.ingested_date,
        "run_id": run.run_id,
        "schema_version": SCHEMA_VERSION,
    }
