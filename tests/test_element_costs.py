"""What the runner does with our elements, kept cheap without changing them: the coder of lists of
records (size estimates that never encode), the dedup join's byte encoding, the file reads and the
garbage collector's settings during a run."""

from __future__ import annotations

import datetime as dt
import gc
import os
import pickle
import zoneinfo

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from conftest import FIXED_NOW, SEEDS, make_settings, make_test_pipeline
from pipeline import collector
from transforms import batching
from transforms.batching import RecordBatch, RecordBatchCoder, decode_records, encode_records, estimated_size
from transforms.common import RunInfo
from transforms.dedupe import Deduplicate
from transforms.enrich import EnrichArticles
from transforms.normalize import to_article
from transforms.read import read_fd
from transforms.topics import load_taxonomy

RUN = RunInfo("element-costs", FIXED_NOW)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def seed_articles() -> list[dict]:
    return [to_article({"source": "files", "origin": str(p), "title": p.stem, "body": p.read_text(encoding="utf-8")},
                       RUN) for p in sorted(SEEDS.glob("*.txt"))]


def odd_times() -> list[dict]:
    """Records with every kind of time the pipeline meets: aware (UTC, fixed offset, a zone with a
    repeated hour), naive, dates, None."""
    return [
        {"article_id": "a", "published_at": dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc),
         "published_date": dt.date(2026, 3, 1), "topics": ["sanctions"], "minhash": b"\x00\x01"},
        {"article_id": "b", "published_at": dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
         "published_date": None, "topics": [], "minhash": None},
        {"article_id": "c", "published_at": dt.datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=BERLIN),
         "published_date": dt.date(2025, 10, 26), "topics": [], "minhash": b""},
        {"article_id": "d", "published_at": dt.datetime(2026, 3, 1, 12, 0), "published_date": dt.date(1, 1, 1),
         "topics": None, "minhash": None},
    ]


def _same(a: dict, b: dict) -> bool:
    """Equal values of the same types, with the same time zones and folds."""
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if type(value) is not type(other) or value != other:
            return False
        if isinstance(value, dt.datetime) and (value.tzinfo != other.tzinfo or value.fold != other.fold
                                               or value.utcoffset() != other.utcoffset()):
            return False
    return True


# -- RecordBatch and its coder ---------------------------------------------------------------------

def test_record_batch_coder_round_trips_records():
    records = [*odd_times(), *seed_articles()]
    coder = beam.coders.registry.get_coder(RecordBatch)
    assert isinstance(coder, RecordBatchCoder)
    decoded = coder.decode(coder.encode(RecordBatch(records)))
    assert type(decoded) is RecordBatch and len(decoded) == len(records)
    assert all(_same(a, b) for a, b in zip(records, decoded))
    assert coder.decode(coder.encode([])) == []


def test_size_estimate_never_encodes_and_is_near_the_encoded_size(monkeypatch):
    articles = seed_articles()
    encoded = len(RecordBatchCoder().encode(RecordBatch(articles)))

    def refuse(*args, **kwargs):
        raise AssertionError("the size estimate encoded the records")

    monkeypatch.setattr(batching.pickle, "dumps", refuse)
    impl = RecordBatchCoder().get_impl()
    estimate = impl.estimate_size(RecordBatch(articles))
    assert estimate == estimated_size(articles)
    assert 0.5 * encoded <= estimate <= 2 * encoded, (estimate, encoded)
    # The windowed-value form Beam's counters call also estimates without encoding.
    size, observables = impl.get_estimated_size_and_observables(RecordBatch(articles))
    assert size >= estimate and observables == []
    assert estimated_size([]) == 0 and estimated_size([("x", b"yz")]) > estimated_size([()])
    # Long lists: a spread sample scaled to the length (exact when the records are alike).
    same = [{"body": "x" * 100, "n": 1}] * 1001
    assert estimated_size(same) == 1001 * estimated_size(same[:1])


def test_list_outputs_are_declared_record_batches():
    """The PCollections of lists of articles get the cheap coder, in a real graph."""
    s = make_settings("/nonexistent")
    p = beam.Pipeline(runner=None)
    articles = p | beam.Create(seed_articles())
    deduped = articles | Deduplicate(s.dedup, output_batches=True)
    labeled = deduped["articles"] | EnrichArticles(s.language, load_taxonomy(s.topics))
    for pcoll in (deduped["articles"], deduped["duplicates"], labeled):
        assert pcoll.element_type is RecordBatch, pcoll
        assert isinstance(beam.coders.registry.get_coder(pcoll.element_type), RecordBatchCoder)


def test_batched_dedup_and_enrich_keep_their_outputs():
    """The same articles come out of the batched dedup and enrichment, as RecordBatch lists."""
    s = make_settings("/nonexistent")
    articles = seed_articles()
    copy = {**articles[0], "article_id": "copy-of-first", "origin": "copy.txt"}
    with make_test_pipeline() as p:
        deduped = p | beam.Create([*articles, copy]) | Deduplicate(s.dedup, output_batches=True)
        labeled = deduped["articles"] | EnrichArticles(s.language, load_taxonomy(s.topics))
        kinds = labeled | "Kinds" >> beam.Map(lambda batch: type(batch).__name__)
        ids = labeled | "Ids" >> beam.FlatMap(lambda batch: [a["article_id"] for a in batch])
        dups = deduped["duplicates"] | beam.FlatMap(lambda batch: [d["article_id"] for d in batch])
        assert_that(ids, equal_to([a["article_id"] for a in articles]), label="kept")
        assert_that(dups, equal_to(["copy-of-first"]), label="duplicates")
        assert_that(kinds | beam.Distinct(), equal_to(["RecordBatch"]), label="kinds")


# -- the dedup join's encoding --------------------------------------------------------------------

def test_join_batches_keep_values_types_and_time_zones():
    entries = [(r["article_id"], r) for r in [*odd_times(), *seed_articles()]]
    decoded = decode_records(encode_records(entries))
    assert [i for i, _ in decoded] == [i for i, _ in entries]
    assert all(_same(a, b) for (_, a), (_, b) in zip(entries, decoded))
    assert isinstance(encode_records(entries), bytes)


def test_join_batches_are_pickle():
    """Plain pickle of the list (one C call each way), not a per-value coder."""
    entries = [(r["article_id"], r) for r in odd_times()]
    assert decode_records(encode_records(odd_times())) == odd_times()
    assert pickle.loads(encode_records(entries)) == entries


# -- reading a file --------------------------------------------------------------------------------

def _fd(path) -> int:
    return os.open(path, os.O_RDONLY)


@pytest.mark.parametrize("length", [0, 1, 4095, 4096, 3 * (1 << 20) + 17])
def test_read_fd_reads_whole_files(tmp_path, length):
    data = os.urandom(length)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert read_fd(_fd(path), 10 << 20, length) == data
    assert read_fd(_fd(path), 10 << 20, 0) == data  # a size hint of 0 (unknown) reads it all too


def test_read_fd_stops_at_the_limit_and_survives_a_wrong_size(tmp_path):
    data = os.urandom(5000)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert read_fd(_fd(path), 1001, 5000) == data[:1001]
    assert read_fd(_fd(path), 1 << 20, 10) == data       # grew after the stat: all of it
    assert read_fd(_fd(path), 1 << 20, 90_000) == data   # shrank after the stat
    assert read_fd(_fd(path), 5001, 4999) == data


def test_read_fd_closes_the_descriptor(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    fd = _fd(path)
    read_fd(fd, 10, 3)
    with pytest.raises(OSError):
        os.fstat(fd)


# -- the collector ---------------------------------------------------------------------------------

def test_collector_is_tuned_during_a_run_and_restored_after():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    seen = []
    with collector.tuned():
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
    assert seen[0][0] == collector.THRESHOLDS and seen[0][1] > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_collector_is_restored_when_the_run_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with collector.tuned():
            raise RuntimeError("boom")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_in_process_runner_runs_bundles_with_the_tuned_collector():
    """The thresholds a DoFn sees inside a run on the local runner."""
    before = gc.get_threshold()
    with make_test_pipeline() as p:
        seen = p | beam.Create([0]) | beam.Map(lambda _: gc.get_threshold())
        assert_that(seen, equal_to([collector.THRESHOLDS]))
    assert gc.get_threshold() == before
