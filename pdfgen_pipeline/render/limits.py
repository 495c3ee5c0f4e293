"""Resource limits of a render: the layout runs in a child process with a wall-clock time limit,
a CPU-time limit and a memory limit (rlimits, inherited by the child's own worker processes), so
that one pathological ouvrage cannot take the worker down. The error says which limit was hit.

Limits come from `PDFGEN_RENDER_TIME_LIMIT` (seconds, wall clock), `PDFGEN_RENDER_CPU_LIMIT`
(CPU seconds per process) and `PDFGEN_RENDER_MEMORY_LIMIT_MB` (growth of the data segment per process,
beyond what the render process holds when it starts); 0 turns a limit off; with all three off the render
runs in the calling process. A `PreparedChild` is a render child started before its work is known (it
imports the layout's libraries meanwhile); its limits apply from the moment it gets the work.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Defaults: a 600-page ouvrage takes about 1 minute and 300 MB per process; these leave a wide margin.
DEFAULT_WALL_SECONDS = 1200.0
DEFAULT_CPU_SECONDS = 1800
DEFAULT_MEMORY_MB = 3072
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: Seconds to wait for a child that has answered (or died) to exit before killing it.
JOIN_SECONDS = 10.0
#: Allocations between two young-generation collections in a render process (Python's default: 700). A layout
#: allocates millions of short-lived objects and few cycles: collecting every 700 cost ~6% of its CPU.
RENDER_GC_THRESHOLD = 10_000


class RenderLimitError(RuntimeError):
    """A render stopped by one of its limits; `limit` is "time", "cpu" or "memory"."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class RenderLimits:
    """Limits of one render (0 = no limit)."""

    wall_seconds: float = DEFAULT_WALL_SECONDS
    cpu_seconds: int = DEFAULT_CPU_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB

    @classmethod
    def from_env(cls) -> RenderLimits:
        """The limits set by `PDFGEN_RENDER_*` variables, defaults otherwise."""
        return cls(wall_seconds=_env_number("PDFGEN_RENDER_TIME_LIMIT", DEFAULT_WALL_SECONDS, float),
                   cpu_seconds=_env_number("PDFGEN_RENDER_CPU_LIMIT", DEFAULT_CPU_SECONDS, int),
                   memory_mb=_env_number("PDFGEN_RENDER_MEMORY_LIMIT_MB", DEFAULT_MEMORY_MB, int))

    @property
    def any(self) -> bool:
        return bool(self.wall_seconds or self.cpu_seconds or self.memory_mb)

    def describe(self) -> str:
        return (f"time {self.wall_seconds:g} s, CPU {self.cpu_seconds} s per process, "
                f"memory {self.memory_mb} MB per process")


def _env_number(name: str, default, kind: type):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        unit = "MB" if name.endswith("_MB") else "seconds"
        raise ValueError(f"{name}={raw!r}: expected a number of {unit} >= 0 (0 = no limit)")
    return value


def process_context() -> multiprocessing.context.BaseContext:
    """How to start render processes: forked when this process runs a single thread (the CLI, a render
    child), so that they start at once with WeasyPrint already imported; spawned beside other threads
    (a Dagster run's), where forking could copy a lock held by another thread."""
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op): a run worker
    killed with `kill -9` must not leave its render burning CPU."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def relax_gc() -> None:
    """Garbage collection for a short-lived render process: what it holds already (imported modules, the
    forked parent's objects) is frozen out of collections, and young objects are collected every
    `RENDER_GC_THRESHOLD` allocations."""
    gc.freeze()
    gc.set_threshold(RENDER_GC_THRESHOLD, *gc.get_threshold()[1:])


def worker_init() -> None:
    """Initializer of the render's pool processes: killed with their parent, collections relaxed."""
    die_with_parent()
    relax_gc()


def _data_segment_bytes() -> int:
    """This process's data segment now (what RLIMIT_DATA counts), 0 where /proc does not say."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmData:")).split()[1]) * 1024
    return 0


def _apply_limits(limits: RenderLimits) -> None:
    """Set this process's rlimits: CPU seconds and data segment from now on (what it holds already is its own)."""
    if limits.cpu_seconds:
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        soft = int(used) + limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
    if limits.memory_mb:
        # on top of what the process holds already (a forked child shares its parent's pages)
        size = limits.memory_mb * 1024 * 1024 + _data_segment_bytes()
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run_and_send(func: Callable[..., Any], kwargs: dict, conn) -> None:
    try:
        result = func(**kwargs)
    except MemoryError:
        conn.send(("memory", None))
    except BaseException as exc:
        try:
            conn.send(("error", exc))
        except Exception:
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


def _child(func: Callable[..., Any], kwargs: dict, limits: RenderLimits, conn) -> None:
    os.setpgrp()  # the render and its workers form one process group: killed together
    die_with_parent()
    relax_gc()
    _apply_limits(limits)
    _run_and_send(func, kwargs, conn)


def _prepared_child(prepare: Callable[[], Any], limits: RenderLimits, work, conn) -> None:
    os.setpgrp()
    die_with_parent()
    prepare()
    relax_gc()
    try:
        job = work.recv()
    except EOFError:
        job = None
    work.close()
    if job is None:  # not needed after all
        conn.close()
        return
    _apply_limits(limits)
    func, kwargs = job
    _run_and_send(func, kwargs, conn)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_limited(func: Callable[..., Any], kwargs: dict, limits: RenderLimits, what: str,
                prepared: PreparedChild | None = None) -> Any:
    """Run `func(**kwargs)` in a child process under `limits`; return its result or raise its exception,
    or `RenderLimitError` naming the limit that stopped it. `func` must be importable (module level).
    With every limit off, `func` runs here, in this process. `prepared`: a child started ahead of the work
    (`PreparedChild`), used instead of a new one."""
    if not limits.any:
        return func(**kwargs)
    if prepared is not None and prepared.give((func, kwargs)):
        proc, receiver = prepared.proc, prepared.receiver
    else:
        ctx = process_context()
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(func, kwargs, limits, sender), name=f"pdfgen-render {what}")
        proc.start()
        sender.close()
    return _wait(proc, receiver, limits, what)


class PreparedChild:
    """A render child started before its work is known: it runs `prepare` (imports) at once, then waits for one
    job from `run_limited(..., prepared=...)`. Started beside the parent's own work (the HTML stage), its imports
    cost no wall time. Forked only (a spawned child would import everything again): None beside threads."""

    def __init__(self, proc, receiver, work):
        self.proc, self.receiver, self.work = proc, receiver, work
        self._taken = False

    @classmethod
    def start(cls, prepare: Callable[[], Any], limits: RenderLimits) -> PreparedChild | None:
        """Start the child, or None where limits are off or this process cannot fork safely."""
        if not limits.any or threading.active_count() != 1:
            return None
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        work_out, work_in = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_prepared_child, args=(prepare, limits, work_out, sender), name="pdfgen-render")
        proc.start()
        sender.close()
        work_out.close()
        return cls(proc, receiver, work_in)

    def give(self, job: tuple[Callable[..., Any], dict]) -> bool:
        """Hand the child its job; False when it has had one already or is gone."""
        if self._taken or not self.proc.is_alive():
            return False
        try:
            self.work.send(job)
        except OSError:  # died meanwhile
            return False
        self._taken = True
        self.work.close()
        return True

    def close(self) -> None:
        """Let an unused child go (it exits), or reap a used one."""
        if not self._taken:
            self._taken = True
            with contextlib.suppress(OSError):
                self.work.send(None)
            self.work.close()
            self.receiver.close()
        self.proc.join(JOIN_SECONDS)
        if self.proc.is_alive():
            _kill_group(self.proc.pid)
            self.proc.join()


def _wait(proc, receiver, limits: RenderLimits, what: str) -> Any:
    """Wait for the render child `proc` under `limits` (its wall-clock time from now) and return its answer."""
    start = time.monotonic()
    message = None
    try:
        if receiver.poll(limits.wall_seconds or None):
            with contextlib.suppress(EOFError):
                message = receiver.recv()
        else:
            _kill_group(proc.pid)
            raise RenderLimitError("time", f"{what}: time limit hit: stopped after {limits.wall_seconds:g} s "
                                           "(PDFGEN_RENDER_TIME_LIMIT)")
    except BaseException:  # the time limit, or interrupted (Ctrl-C, a cancelled run): stop it now
        _kill_group(proc.pid)
        raise
    finally:
        proc.join(JOIN_SECONDS)
        if proc.is_alive():
            _kill_group(proc.pid)
            proc.join()
        _kill_group(proc.pid)  # the child's own workers, if it left any
        receiver.close()
    if message is None:  # died without a word: killed by a signal
        code = proc.exitcode
        if code == -signal.SIGXCPU:
            raise RenderLimitError("cpu", f"{what}: CPU time limit hit: more than {limits.cpu_seconds} s of CPU "
                                          "(PDFGEN_RENDER_CPU_LIMIT)")
        if code in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGKILL) and limits.memory_mb:
            # an allocation refused inside a C library (Pango, cairo) aborts the process
            raise RenderLimitError("memory", f"{what}: the render process was killed ({signal.Signals(-code).name}),"
                                             f" most likely at its memory limit of {limits.memory_mb} MB "
                                             "(PDFGEN_RENDER_MEMORY_LIMIT_MB)")
        raise RuntimeError(f"{what}: the render process died (exit {code}) after "
                           f"{time.monotonic() - start:.0f} s; limits: {limits.describe()}")
    kind, payload = message
    if kind == "ok":
        return payload
    if kind == "memory":
        raise RenderLimitError("memory", f"{what}: memory limit hit: more than {limits.memory_mb} MB "
                                         "(PDFGEN_RENDER_MEMORY_LIMIT_MB)")
    raise payload
