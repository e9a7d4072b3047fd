"""Entry point of the local worker processes that ``--workers N`` starts (Beam's SDK harness, quiet).

Beam starts ``python -m apache_beam.runners.worker.sdk_worker_main`` per worker; that logs its
start-up and shutdown at INFO straight to the terminal, warns about a missing "semi persistent
directory" that only matters on Dataflow, and dies with a traceback on Ctrl-C. This wrapper runs
the same harness with:

* a root handler that prints only CRITICAL records (everything else reaches the launching process
  through Beam's log relay, where ``--log-level`` decides what is shown), so the harness's
  start-up chatter never reaches the terminal;
* the harness's own logger at ERROR (its start-up INFO lines and that warning);
* SIGINT ignored: Ctrl-C is handled once, by the launching process, which shuts the workers down.

Warm workers (``--serve``): a new worker process costs seconds of CPU before its first article (Beam's
imports 2.7 s, the language tagger 0.7 s, the compiled taxonomy 1 s, lingua's models up to 4 s), and a
chunked run starts ``workers`` of them per chunk. The launching process therefore starts one *worker
server* per run (``warm_workers_address`` in pipeline/runner.py): it imports the harness and the steps'
modules and builds the language tagger and the compiled taxonomy once (the same objects
``transforms/enrich.py`` caches per process), then forks one child per worker that Beam asks for. A
child starts in milliseconds with those objects in place (copy-on-write). lingua's models still load
in each worker on first use (see ``_warm``). Beam still starts
``python -m pipeline.worker`` per worker: with ``NEWSBEAM_WORKER_SERVER`` set, that process only hands
its environment to the server and relays the child's exit status (it never imports Beam); when the
server cannot be reached it runs the harness itself, as before. The server exits when the launching
process closes its stdin or dies (EOF), and ends its children then.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import struct
import sys

SERVER_ENV = "NEWSBEAM_WORKER_SERVER"

# glibc malloc arenas per process in a ``--workers N`` run (see :func:`limit_malloc_arenas`).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Cap the glibc malloc arenas of this process at ``count`` (``mallopt(M_ARENA_MAX)``); True when set.

    glibc gives every new thread that allocates its own arena, up to 8 per core, and memory freed in one
    arena serves only that arena. The runner of a ``--workers N`` run moves every stage's data through
    gRPC's threads, and its resident memory grew with those arenas: 5,000 files, profile fast, two
    workers, two rounds alternating, the runner's peak RSS 451-477 MiB without and 368-378 MiB with 2
    arenas, the largest worker's 410-431 and 390-392 MiB, CPU the same within the noise. (One in-process
    worker: 462 vs 468 MiB, no gain, so it is not set there.) Called before the threads start: in the
    runner before a multi-process pipeline runs, in the worker server before it forks (workers inherit
    it), in a cold worker before its harness starts. A no-op off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, count))
    except (OSError, AttributeError):  # not glibc
        return False


def _quiet_harness_logging() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setLevel(logging.CRITICAL)
    handler.setFormatter(logging.Formatter("newsbeam worker: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)  # also keeps logging.warning() from installing a default INFO handler
    logging.getLogger("apache_beam.runners.worker.sdk_worker_main").setLevel(logging.ERROR)


def run_harness(argv: list[str]) -> None:
    """Beam's SDK harness in this process (its environment says where the runner is)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_malloc_arenas()  # a forked worker has it from the server already: setting it again is harmless
    _quiet_harness_logging()
    from apache_beam.runners.worker import sdk_worker_main

    from pipeline import beam_speedups, collector

    beam_speedups.install()
    collector.settle()  # this process runs bundles (a forked worker: the server's objects are frozen already)
    sdk_worker_main.main(argv)


# -- the wire: one length-prefixed JSON message each way --------------------------------------------

def _send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode("utf-8")
    sock.sendall(struct.pack("!I", len(data)) + data)


def _receive(sock: socket.socket) -> dict | None:
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    data = _read_exactly(sock, struct.unpack("!I", header)[0])
    return None if data is None else json.loads(data.decode("utf-8"))


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


# -- the client: what Beam starts per worker ----------------------------------------------------------

def _via_server(address: str, argv: list[str]) -> int | None:
    """Have the worker server fork this worker; its exit status, or None when there is no server."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        return None
    with sock:
        env = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
        _send(sock, {"env": env, "argv": argv})
        reply = _receive(sock)
    if reply is None:
        return 1  # the server went away while the worker ran (the run was stopped)
    return int(reply.get("status", 1))


# -- the server ---------------------------------------------------------------------------------------

def _import_harness() -> None:
    """Import what a worker imports (the harness and the steps' modules): ~1.8 s of a server's start."""
    from apache_beam.runners.worker import sdk_worker_main  # noqa: F401  (the harness's imports)

    from transforms import dedupe, enrich, normalize, read, write  # noqa: F401  (the steps' imports)


def _warm(spec_path: str | None) -> None:
    """Build the objects a worker's DoFns would build (enrich.cached) from the spec file, if any."""
    _import_harness()
    if not spec_path:
        return
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    from transforms import enrich
    from transforms.language import EXPECTED_LANGUAGES, LanguageTagger
    from transforms.topics import CompiledTaxonomy

    if spec.get("language") is not None:
        language = spec["language"]
        # lingua's models are left to load on first use in each worker: loaded here (4 s, 355 MB), they were
        # not shared for long (bench, profile local: +450 MB PSS, no CPU saved), as Python's reference counts
        # and lingua's caches write to the pages a fork shares.
        enrich.cached("language", language, lambda: LanguageTagger(**language))
    if spec.get("taxonomy") is not None:
        taxonomy = spec["taxonomy"]
        compiled = enrich.cached("taxonomy", taxonomy, lambda: CompiledTaxonomy(taxonomy))
        compiled.compile_all([None, *EXPECTED_LANGUAGES])


SPEC_FROM_STDIN = "-"


def _read_line(fd: int) -> str | None:
    """One line from ``fd``, read a byte at a time (nothing past it is consumed); None at EOF."""
    data = bytearray()
    while True:
        byte = os.read(fd, 1)
        if not byte:
            return None
        if byte == b"\n":
            return data.decode("utf-8")
        data += byte


def serve(address: str, spec_path: str | None) -> None:
    """Fork a warm worker per connection until stdin closes (the launching process ended).

    ``spec_path`` ``-`` (an early start, :func:`prestart`): the server imports the harness first and
    then reads the spec's path (or an empty line: no spec) from the first line of stdin."""
    import select

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_malloc_arenas()  # before any thread: the forked workers inherit it
    _quiet_harness_logging()
    if spec_path == SPEC_FROM_STDIN:
        _import_harness()
        spec_path = _read_line(sys.stdin.fileno())
        if spec_path is None:
            return  # the launcher ended (or ran no pipeline) before it sent a spec
    _warm(spec_path)
    from pipeline import beam_speedups, collector

    beam_speedups.install()
    collector.settle()  # the warm objects frozen once, before any fork
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os._exit(0)  # the launcher stopped while this server warmed up
    # The launcher reads only that line: nothing of this process or its workers may write to the pipe again
    # (a write after the launcher is gone would fail with a broken pipe on the launcher's terminal).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    children: dict[int, socket.socket] = {}
    try:
        while True:
            ready, _, _ = select.select([listener, sys.stdin], [], [], 0.2)
            if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
                return  # EOF: the launching process is gone or done
            if listener in ready:
                conn, _ = listener.accept()
                request = _receive(conn)
                if request is None:
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:  # the worker
                    status = 1
                    try:
                        listener.close()
                        conn.close()
                        os.environ.clear()
                        os.environ.update(request["env"])
                        run_harness(request["argv"])
                        status = 0
                    finally:
                        logging.shutdown()
                        os._exit(status)
                children[pid] = conn
            for pid in list(children):
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    conn = children.pop(pid)
                    status = os.waitstatus_to_exitcode(code)
                    try:
                        _send(conn, {"status": status if status >= 0 else 128 - status})
                    except OSError:
                        pass
                    conn.close()
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        listener.close()
        try:
            os.unlink(address)
        except OSError:
            pass


# -- the launcher's side of an early start ------------------------------------------------------------

_PRESTARTED: dict | None = None


def prestart(runner: str, workers: int) -> None:
    """Start a worker server now, before this process imports Beam, for a run of ``workers`` local
    worker processes on ``runner``; it imports the harness (~1.8 s, on the other core, while this
    process imports Beam) and then waits for the run's spec (``pipeline.runner.warm_workers`` hands it
    over: :func:`take_prestarted`). A no-op for one worker, another runner, ``NEWSBEAM_COLD_WORKERS``,
    or when a server was started already. The server ends when this process ends (its stdin closes);
    a server that never got a spec leaves nothing behind (its folder is removed at exit)."""
    global _PRESTARTED
    if _PRESTARTED is not None or workers <= 1 or runner != "DirectRunner" or os.environ.get("NEWSBEAM_COLD_WORKERS"):
        return
    import atexit
    import tempfile

    folder = tempfile.mkdtemp(prefix="newsbeam-workers-")
    address = os.path.join(folder, "socket")
    _PRESTARTED = {"process": start_server(address, SPEC_FROM_STDIN), "address": address, "folder": folder}
    atexit.register(_drop_prestarted)


def start_server(address: str, spec: str):
    """``python -m pipeline.worker --serve ADDRESS SPEC`` (a spec file's path, or ``-``: from stdin) as a
    child of this process, its stdin and stdout pipes to it (the launcher's side of :func:`serve`)."""
    import subprocess

    from pipeline.config import PROJECT_ROOT

    return subprocess.Popen([sys.executable, "-m", "pipeline.worker", "--serve", address, spec],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=PROJECT_ROOT)


def take_prestarted() -> dict | None:
    """The early-started server (``process``, ``address``, ``folder``), handed over once; None if there
    is none or it has ended. The caller sends it the spec's path as a line on its stdin."""
    global _PRESTARTED
    server, _PRESTARTED = _PRESTARTED, None
    if server is not None and server["process"].poll() is not None:
        _remove(server)
        return None
    return server


def _drop_prestarted() -> None:
    """At exit: end an early-started server that never got a spec. It has forked nothing and holds
    nothing, so it is terminated at once (closing its stdin would end it only after its imports)."""
    server = take_prestarted()
    if server is not None:
        process = server["process"]
        try:
            process.terminate()
            process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a stuck server is killed
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        _remove(server)


def _remove(server: dict) -> None:
    import shutil

    shutil.rmtree(server["folder"], ignore_errors=True)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return
    address = os.environ.get(SERVER_ENV)
    if address:
        status = _via_server(address, sys.argv)
        if status is not None:
            sys.exit(status)
    run_harness(sys.argv)


if __name__ == "__main__":
    main()
