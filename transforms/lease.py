"""One writer per output root: a lease taken before a run writes anything.

Local disk: an OS lock (``filelock``, ``flock``) on ``<root>/_lock/writer.lock``, held by the
launching process for the whole run. The kernel releases it when the process dies, however it
dies, so a stale lease of a dead process is never an obstacle. Beside it ``owner.json`` names the
holder (run id, pid, host, since) for the message a second writer prints, and for the commit step
to check that its run still holds the lease.

gs://: an object ``<root>/_lock/lease.json`` created with ``ifGenerationMatch=0``; the holder
renews it (heartbeat) every ``ttl/3`` seconds with ``ifGenerationMatch=<its generation>``; a lease
whose heartbeat is older than ``ttl`` belongs to a dead writer and is taken over with
``ifGenerationMatch=<the stale generation>``, so of two writers taking over at once only one wins.
A holder that fails to renew (someone took over) marks the lease lost and the commit refuses.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
from typing import Any

from transforms import storage

LOCK_DIR = "_lock"
# gs:// lease lifetime without a heartbeat; NEWSBEAM_LEASE_TTL_SECONDS overrides it (the gs:// fault
# tests use a few seconds, so that a killed writer's lease expires quickly).
DEFAULT_TTL_SECONDS = float(os.environ.get("NEWSBEAM_LEASE_TTL_SECONDS") or 60.0)


class LeaseBusy(RuntimeError):
    """Another writer holds the output root."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process (owner unknown)"
    return (f"run {info.get('run_id')} (pid {info.get('pid')} on {info.get('host')}, "
            f"since {info.get('since')}, last heartbeat {info.get('heartbeat_at')})")


class WriterLease:
    """``with WriterLease(root, run_id, wait_seconds=0):`` - the single-writer lease of ``root``.

    ``acquire`` waits up to ``wait_seconds`` (0 = try once) and raises :class:`LeaseBusy` naming the
    holder. Re-entrant for the same object.
    """

    def __init__(self, root: str, run_id: str, wait_seconds: float = 0.0, ttl_seconds: float = DEFAULT_TTL_SECONDS):
        self.root = root
        self.run_id = run_id
        self.wait_seconds = max(0.0, float(wait_seconds))
        self.ttl = float(ttl_seconds)
        self._depth = 0
        self._lock = None
        self._generation: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = _now()
        self.lost = False

    # -- paths ---------------------------------------------------------------------------------
    @property
    def _dir(self) -> str:
        return storage.join(self.root, LOCK_DIR)

    @property
    def owner_path(self) -> str:
        return storage.join(self._dir, "owner.json" if not storage.is_remote(self.root) else "lease.json")

    def _info(self) -> dict[str, Any]:
        now = _now()
        return {"run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                "since": self._since.isoformat(), "heartbeat_at": now.isoformat(),
                "expires_at": (now + dt.timedelta(seconds=self.ttl)).isoformat()}

    # -- acquire / release ---------------------------------------------------------------------
    def acquire(self) -> "WriterLease":
        if self._depth:
            self._depth += 1
            return self
        self._since = _now()
        if self.root.startswith("gs://"):
            self._acquire_gcs()
        elif storage.is_remote(self.root):
            raise LeaseBusy(f"no writer lease is implemented for {self.root}: only local paths and gs://")
        else:
            self._acquire_local()
        self._depth = 1
        return self

    def _acquire_local(self) -> None:
        from filelock import FileLock, Timeout

        os.makedirs(self._dir, exist_ok=True)
        lock = FileLock(os.path.join(self._dir, "writer.lock"), timeout=self.wait_seconds or 0)
        try:
            lock.acquire(timeout=self.wait_seconds if self.wait_seconds else 0, poll_interval=0.1)
        except Timeout:
            raise LeaseBusy(f"output {self.root} is being written by {describe_holder(read_owner(self.root))}; "
                            f"wait for it or pass --wait-lock SECONDS") from None
        self._lock = lock
        storage.write_text_atomically(self.owner_path, json.dumps(self._info(), indent=2), point="lease")

    def _acquire_gcs(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        payload = lambda: json.dumps(self._info(), indent=2).encode()  # noqa: E731
        while True:
            if storage.create_if_absent(self.owner_path, payload()):
                self._generation = storage.read_with_generation(self.owner_path)[1]
                break
            current = storage.read_with_generation(self.owner_path)
            if current is not None:
                info = _loads(current[0])
                expires = _parse_time(info.get("expires_at")) if info else None
                if expires is None or expires < _now():  # a dead writer's lease: take it over
                    generation = storage.replace_if_generation(self.owner_path, payload(), current[1])
                    if generation is not None:
                        self._generation = generation
                        break
            if time.monotonic() >= deadline:
                holder = _loads(current[0]) if current else None
                raise LeaseBusy(f"output {self.root} is being written by {describe_holder(holder)}; "
                                f"wait for it or pass --wait-lock SECONDS")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="newsbeam-lease", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            generation = storage.replace_if_generation(self.owner_path, json.dumps(self._info()).encode(),
                                                       self._generation)
            if generation is None:
                self.lost = True
                return
            self._generation = generation

    def release(self) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        if self._lock is not None:
            try:
                os.unlink(self.owner_path)
            except OSError:
                pass
            self._lock.release()
            self._lock = None
        elif self._generation is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            storage.delete_if_generation(self.owner_path, self._generation)
            self._generation = None

    def __enter__(self) -> "WriterLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _loads(data: bytes | str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(data) if data else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def read_owner(root: str) -> dict[str, Any] | None:
    """What the lease says about its holder (None when there is no lease record)."""
    name = "lease.json" if storage.is_remote(root) else "owner.json"
    try:
        return _loads(storage.read_text(storage.join(root, LOCK_DIR, name)))
    except OSError:
        return None


def held_by(root: str, run_id: str) -> bool:
    """True when the lease of ``root`` is held, unexpired, by ``run_id`` (the commit step checks it)."""
    owner = read_owner(root)
    if not owner or owner.get("run_id") != run_id:
        return False
    expires = _parse_time(owner.get("expires_at"))
    if storage.is_remote(root):
        return expires is not None and expires >= _now()
    return True  # local: the OS lock of a live process has no expiry; owner.json is removed on release


def try_lease(root: str, run_id: str) -> WriterLease | None:
    """The lease if it is free right now (readers use it to finish an interrupted commit), else None.

    Never creates an output root that does not exist."""
    if not storage.is_remote(root) and not os.path.isdir(root):
        return None
    lease = WriterLease(root, run_id, wait_seconds=0)
    try:
        return lease.acquire()
    except (LeaseBusy, OSError):
        return None
