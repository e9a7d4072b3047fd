"""Storage primitives every step shares, on local disk and on object stores (gs://) alike.

Everything goes through Beam's ``FileSystems`` except the two operations it lacks and the commit
protocol (transforms/commit.py) needs:

* :func:`create_if_absent` - create an object only if no object of that name exists, atomically.
  Local disk: write a temp file, fsync it, then ``os.link`` it to the name (fails if the name exists).
  gs://: an upload with the precondition ``ifGenerationMatch=0`` (the GCS client's own mechanism).
* :func:`move` - put a staged file at its final name, replacing any earlier copy (POSIX ``rename``;
  on GCS copy then delete, which Beam's ``FileSystems.rename`` does); idempotent when re-run after a
  crash: a missing source whose target exists counts as done.

Fault injection (tests/test_faults*.py): ``NEWSBEAM_FAULT_AFTER=<point>:<n>`` makes the process kill
itself with SIGKILL, or ``NEWSBEAM_FAULT_ENOSPC=<point>:<n>`` raise ``OSError(ENOSPC)``, at the n-th
time it passes ``<point>`` (``*`` = any point). Points are named where files or objects are created,
so a test can stop a run after each file it creates. Unset, :func:`fault_point` costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import posixpath
import signal
import uuid
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TEMP_SUFFIX = ".inprogress"

_FAULT_COUNTS: dict[str, int] = {}


def _anonymous_for_emulator() -> None:
    """With ``STORAGE_EMULATOR_HOST`` set (a GCS stand-in, tests only), Beam's GCS client connects
    anonymously at once instead of first looking for Google credentials with retries (~30 s)."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp.auth import _Credentials
    except ImportError:  # no gcp extra: gs:// is not available anyway
        return
    with _Credentials._credentials_lock:
        _Credentials._credentials_init = True
        _Credentials._credentials = None


_anonymous_for_emulator()


def _parse_fault(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, count = value.rpartition(":")
    try:
        return point, int(count)
    except ValueError:
        return None


def fault_point(name: str) -> None:
    """Kill this process or fail with ENOSPC here, when a fault-injection test asks for it.

    ``NEWSBEAM_FAULT_TRACE=<file>`` appends the name of every point passed to that file (a test
    counts the points of a normal run, then kills a run at each of them)."""
    trace = os.environ.get("NEWSBEAM_FAULT_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    for variable in ("NEWSBEAM_FAULT_AFTER", "NEWSBEAM_FAULT_ENOSPC"):
        spec = _parse_fault(os.environ.get(variable))
        if spec is None:
            continue
        point, nth = spec
        if point not in ("*", name):
            continue
        key = f"{variable}:{point}"
        _FAULT_COUNTS[key] = _FAULT_COUNTS.get(key, 0) + 1
        if _FAULT_COUNTS[key] == nth:
            if variable == "NEWSBEAM_FAULT_AFTER":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.ENOSPC, f"No space left on device (injected at {name} #{nth})")


def is_remote(path: str) -> bool:
    return "://" in path


def join(root: str, *parts: str) -> str:
    """Join path parts for local paths and URLs (gs://...) alike."""
    if is_remote(root):
        return posixpath.join(root.rstrip("/"), *parts)
    return FileSystems.join(root, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_bytes(path: str) -> bytes | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def read_text(path: str) -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8")


def _write_bytes(path: str, data: bytes, mime_type: str = "application/octet-stream") -> None:
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with FileSystems.create(path, mime_type=mime_type, compression_type=CompressionTypes.UNCOMPRESSED) as sink:
        sink.write(data)


def delete(paths: list[str]) -> None:
    """Delete files (local: also folders). gs:// objects are deleted one request each (GCS's
    single-object API; the batch API Beam uses is not served by every GCS stand-in)."""
    gcs = [p for p in paths if p.startswith("gs://")]
    other = [p for p in paths if not p.startswith("gs://")]
    if other:
        FileSystems.delete(other)
    if gcs:
        from google.api_core.exceptions import NotFound

        for path in gcs:
            try:
                _gcs_blob(path).delete()
            except NotFound:
                continue


def replace_file(temp_path: str, path: str) -> None:
    """Move ``temp_path`` onto ``path``, replacing it (readers see the old file or the new one).

    Local disk: one POSIX rename. gs://: copy over the target, then delete the source (GCS has no
    rename; a crash in between leaves both, and repeating the move gives the same result)."""
    if temp_path.startswith("gs://"):
        source = _gcs_blob(temp_path)
        target = _gcs_blob(path)
        source.bucket.copy_blob(source, target.bucket, target.name)
        source.delete()
        return
    if not is_remote(temp_path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        os.replace(temp_path, path)
        return
    try:
        FileSystems.rename([temp_path], [path])
    except Exception:
        if not FileSystems.exists(path):
            raise
        FileSystems.delete([path])
        FileSystems.rename([temp_path], [path])


def write_text_atomically(path: str, text: str, point: str = "write_text") -> None:
    """Write ``text`` to a temp name, then rename it onto ``path``."""
    temp = f"{path}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
    _write_bytes(temp, text.encode("utf-8"), "application/json")
    fault_point(point)
    replace_file(temp, path)


def move(source: str, target: str) -> bool:
    """Put ``source`` at ``target`` (replacing it). Returns False when ``source`` is gone and
    ``target`` exists (an earlier attempt already moved it); raises when both are missing."""
    if not FileSystems.exists(source):
        if FileSystems.exists(target):
            return False
        raise FileNotFoundError(f"neither the staged file {source} nor its target {target} exists")
    replace_file(source, target)
    return True


def delete_tree(path: str) -> None:
    """Delete a folder (local) or every object under a prefix (gs://); absent is fine."""
    if is_remote(path):
        objects = [m.path for m in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
        if objects:
            delete(objects)
        return
    if os.path.lexists(path):
        FileSystems.delete([path])


def fsync_dir(path: str) -> None:
    """fsync a local folder (its entries' names are durable); absent or unopenable is ignored."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _gcs_blob(path: str) -> Any:
    bucket, _, name = path[len("gs://"):].partition("/")
    return _gcs_client().bucket(bucket).blob(name)


_CLIENT = None


def _gcs_client():
    global _CLIENT
    if _CLIENT is None:
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            _CLIENT = storage.Client(credentials=AnonymousCredentials(), project="newsbeam-test")
        else:
            _CLIENT = storage.Client()
    return _CLIENT


def create_if_absent(path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists; True when this call created it.

    Atomic: of two concurrent callers exactly one gets True, and no reader ever sees a partial
    object. Local files are fsynced with their folder (the object survives a power cut).
    """
    if path.startswith("gs://"):
        from google.api_core.exceptions import PreconditionFailed

        try:
            _gcs_blob(path).upload_from_string(data, content_type="application/json", if_generation_match=0)
        except PreconditionFailed:
            return False
        return True
    if is_remote(path):
        raise NotImplementedError(f"create-if-absent is implemented for local paths and gs:// only: {path}")
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    temp = f"{path}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    fsync_dir(folder)
    return True


def read_with_generation(path: str) -> tuple[bytes, int] | None:
    """gs:// only: content and generation of an object, or None if absent."""
    from google.api_core.exceptions import NotFound

    blob = _gcs_blob(path)
    try:
        data = blob.download_as_bytes()
    except NotFound:
        return None
    return data, int(blob.generation or 0)


def replace_if_generation(path: str, data: bytes, generation: int) -> int | None:
    """gs:// only: overwrite ``path`` if its generation is still ``generation``; the new generation,
    or None when someone else changed it first."""
    from google.api_core.exceptions import PreconditionFailed

    blob = _gcs_blob(path)
    try:
        blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
    except PreconditionFailed:
        return None
    return int(blob.generation or 0)


def delete_if_generation(path: str, generation: int) -> bool:
    """gs:// only: delete ``path`` if its generation is still ``generation``."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    try:
        _gcs_blob(path).delete(if_generation_match=generation)
    except (PreconditionFailed, NotFound):
        return False
    return True


def sync_local(path: str) -> None:
    """Flush written data to disk before a commit point on local disk (no-op for object stores)."""
    if not is_remote(path):
        os.sync()
