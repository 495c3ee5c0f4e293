"""Resource limits of a render (issue 5, item 6): a wall-clock limit, a CPU limit and a memory limit on
the layout's child process; the error says which limit was hit, and the render's processes are gone."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from pdfgen_pipeline.render.book import render_ouvrage
from pdfgen_pipeline.render.limits import PreparedChild, RenderLimitError, RenderLimits, run_limited
from pdfgen_pipeline_tests.conftest import REFERENTIEL, REPO

#: A run worker stand-in: renders (hangs) under limits until it is killed.
WORKER = """
import sys
from pdfgen_pipeline.render.limits import RenderLimits, run_limited
from pdfgen_pipeline_tests.render.test_limits import _hang
run_limited(_hang, {"pid_file": sys.argv[1]}, RenderLimits(600, 0, 0), "layout")
"""

# ------------------------------------------------------------------ work run in the limited child (module level)


def _sleep_with_a_child(pid_file: str) -> None:
    """Start a grandchild that would outlive us, then hang."""
    child = subprocess.Popen(["sleep", "600"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(600)


def _hang(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


def _burn_cpu() -> None:
    while True:
        pass


def _allocate(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))


def _fail(message: str) -> None:
    raise ValueError(message)


def _add(a: int, b: int) -> tuple[int, int]:
    return a + b, os.getpid()


_HELD: list[bytearray] = []


def _prepare(marker: Path, hold_mb: int) -> None:
    """A preparation that leaves its mark and holds memory (as imports would)."""
    _HELD.append(bytearray(hold_mb * 1024 * 1024))
    marker.write_text(str(os.getpid()))


def _allocate_here(mb: int) -> tuple[int, int]:
    return len(bytearray(mb * 1024 * 1024)), os.getpid()


def _gc_state() -> tuple[int, int]:
    import gc

    return gc.get_threshold()[0], gc.get_freeze_count()


def _gc_in_pool() -> list[tuple[int, int]]:
    from pdfgen_pipeline.render import parallel

    with parallel.pool(2) as workers:
        return workers.starmap(_gc_state, [()] * 2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): it is dead for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][:1] != "Z"


def _gone(pid: int, seconds: float = 10) -> bool:
    """True once `pid` is dead (a kill is sent at once; the kernel reaps at its pace)."""
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ------------------------------------------------------------------ tests


def test_result_and_exceptions_come_back_from_the_child() -> None:
    limits = RenderLimits(wall_seconds=120, cpu_seconds=120, memory_mb=1024)
    total, pid = run_limited(_add, {"a": 2, "b": 3}, limits, "addition")
    assert total == 5 and pid != os.getpid()
    with pytest.raises(ValueError, match="mauvaise entrée"):
        run_limited(_fail, {"message": "mauvaise entrée"}, limits, "failure")


def test_render_processes_collect_garbage_less_often_than_the_caller() -> None:
    import gc

    from pdfgen_pipeline.render.limits import RENDER_GC_THRESHOLD

    before = gc.get_threshold()
    threshold, frozen = run_limited(_gc_state, {}, RenderLimits(60, 0, 0), "gc")
    assert threshold == RENDER_GC_THRESHOLD and frozen > 0  # the imported modules frozen out of collections
    pool_states = run_limited(_gc_in_pool, {}, RenderLimits(60, 0, 0), "gc")
    assert len(pool_states) == 2 and all(t == RENDER_GC_THRESHOLD and f > 0 for t, f in pool_states)
    assert gc.get_threshold() == before and before[0] != RENDER_GC_THRESHOLD  # the calling process untouched


def test_time_limit_kills_the_render_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(RenderLimitError, match=r"layout of x: time limit hit: stopped after 2 s "
                                               r"\(PDFGEN_RENDER_TIME_LIMIT\)") as err:
        run_limited(_sleep_with_a_child, {"pid_file": str(pid_file)},
                    RenderLimits(wall_seconds=2, cpu_seconds=0, memory_mb=0), "layout of x")
    assert err.value.limit == "time"
    grandchild = int(pid_file.read_text())
    assert _gone(grandchild), "the render's own child outlived the time limit"


def _wait_for(path: Path, proc: subprocess.Popen) -> int:
    for _ in range(600):
        if path.exists() and path.read_text():
            return int(path.read_text())
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_render_dies_with_its_killed_worker(tmp_path: Path) -> None:
    """`kill -9` of the process that started a render (the Dagster run worker) kills the render too."""
    pid_file = tmp_path / "render.pid"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(pid_file)], cwd=REPO, stderr=subprocess.PIPE)
    try:
        render = _wait_for(pid_file, worker)
        assert _alive(render)
        worker.kill()
        worker.wait(30)
        assert _gone(render), "the render outlived its killed worker"
    finally:
        worker.kill()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), 9)


#: A run worker that is interrupted (Ctrl-C; Dagster turns a run termination into an interrupt) and lives on.
INTERRUPTED_WORKER = """
import sys, time
from pdfgen_pipeline.render import limits
from pdfgen_pipeline.render.limits import RenderLimits, run_limited
from pdfgen_pipeline_tests.render.test_limits import _hang
limits.JOIN_SECONDS = 600  # were the render not killed on the interrupt, the worker would wait this long
try:
    run_limited(_hang, {"pid_file": sys.argv[1]}, RenderLimits(600, 0, 0), "layout")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    time.sleep(60)
"""


def test_an_interrupted_render_is_stopped_at_once(tmp_path: Path) -> None:
    pid_file = tmp_path / "render.pid"
    worker = subprocess.Popen([sys.executable, "-c", INTERRUPTED_WORKER, str(pid_file)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        render = _wait_for(pid_file, worker)
        worker.send_signal(signal.SIGINT)
        ready, _, _ = select.select([worker.stdout], [], [], 120)
        assert ready, "the interrupted worker is still waiting for its render"
        assert worker.stdout.readline().strip() == "interrupted"
        assert worker.poll() is None  # the worker lives on: only the interrupt can have stopped the render
        assert _gone(render), "the render outlived the interrupt"
    finally:
        worker.kill()
        worker.wait(30)


def test_cpu_limit() -> None:
    with pytest.raises(RenderLimitError, match=r"CPU time limit hit: more than 1 s .*PDFGEN_RENDER_CPU_LIMIT") as err:
        run_limited(_burn_cpu, {}, RenderLimits(wall_seconds=120, cpu_seconds=1, memory_mb=0), "layout of y")
    assert err.value.limit == "cpu"


def test_memory_limit() -> None:
    limits = RenderLimits(wall_seconds=120, cpu_seconds=0, memory_mb=300)
    with pytest.raises(RenderLimitError, match=r"memory limit hit: more than 300 MB .*PDFGEN_RENDER_MEMORY_LIMIT_MB"
                       ) as err:
        run_limited(_allocate, {"mb": 2048}, limits, "layout of z")
    assert err.value.limit == "memory"
    assert run_limited(_allocate, {"mb": 50}, limits, "layout of z") == 50 * 1024 * 1024  # below it: fine


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDFGEN_RENDER_TIME_LIMIT", "90")
    monkeypatch.setenv("PDFGEN_RENDER_CPU_LIMIT", "0")
    monkeypatch.setenv("PDFGEN_RENDER_MEMORY_LIMIT_MB", "512")
    assert RenderLimits.from_env() == RenderLimits(wall_seconds=90, cpu_seconds=0, memory_mb=512)
    monkeypatch.setenv("PDFGEN_RENDER_MEMORY_LIMIT_MB", "beaucoup")
    with pytest.raises(ValueError, match=r"PDFGEN_RENDER_MEMORY_LIMIT_MB='beaucoup': expected a number of MB"):
        RenderLimits.from_env()


def test_all_limits_off_runs_in_this_process() -> None:
    assert run_limited(_add, {"a": 1, "b": 1}, RenderLimits(0, 0, 0), "addition") == (2, os.getpid())


def test_a_real_render_stopped_by_its_time_limit_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`render_ouvrage` of a sample under a time limit shorter than its layout: the error names the document
    and the limit, and no PDF is left behind."""
    monkeypatch.setenv("PDFGEN_RENDER_TIME_LIMIT", "0.3")
    with pytest.raises(RenderLimitError, match=r"layout of document\.html: time limit hit: stopped after 0\.3 s"):
        render_ouvrage(REFERENTIEL / "lf1", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.pdf"))
    monkeypatch.setenv("PDFGEN_RENDER_TIME_LIMIT", "600")
    report = render_ouvrage(REFERENTIEL / "lf1", tmp_path / "again")
    assert (tmp_path / "again" / "document.pdf").stat().st_size > 0 and report


def _in_a_fresh_process(scenario: str, tmp_path: Path) -> None:
    """Run `scenario(tmp)` of this module in a new interpreter: a prepared child is forked only from a
    single-threaded process, and this one may hold other tests' threads (moto, daemons)."""
    code = f"import sys\nfrom pdfgen_pipeline_tests.render.test_limits import {scenario}\n{scenario}(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]


def _scenario_one_job(tmp: str) -> None:
    limits = RenderLimits(wall_seconds=120, cpu_seconds=120, memory_mb=300)
    marker = Path(tmp) / "prepared.pid"
    prepared = PreparedChild.start(partial(_prepare, marker, 400), limits)
    assert prepared is not None
    try:
        # what the preparation holds (400 MB) is not counted against the memory limit (300 MB)
        size, pid = run_limited(_allocate_here, {"mb": 100}, limits, "layout", prepared=prepared)
        assert size == 100 * 1024 * 1024 and pid == int(marker.read_text()) == prepared.proc.pid
        with pytest.raises(RenderLimitError, match="memory limit hit"):  # a second job: a new child
            run_limited(_allocate_here, {"mb": 2048}, limits, "layout", prepared=prepared)
    finally:
        prepared.close()
    assert _gone(pid)


def _scenario_limits_and_exceptions(tmp: str) -> None:
    prepared = PreparedChild.start(partial(_prepare, Path(tmp) / "a", 1), RenderLimits(120, 1, 0))
    assert prepared is not None
    with pytest.raises(RenderLimitError, match="CPU time limit hit: more than 1 s"):
        run_limited(_burn_cpu, {}, RenderLimits(120, 1, 0), "layout", prepared=prepared)
    prepared.close()
    prepared = PreparedChild.start(partial(_prepare, Path(tmp) / "b", 1), RenderLimits(120, 0, 0))
    assert prepared is not None
    with pytest.raises(ValueError, match="mauvaise entrée"):
        run_limited(_fail, {"message": "mauvaise entrée"}, RenderLimits(120, 0, 0), "layout", prepared=prepared)
    prepared.close()


def _scenario_unused(tmp: str) -> None:
    marker = Path(tmp) / "unused.pid"
    prepared = PreparedChild.start(partial(_prepare, marker, 1), RenderLimits())
    assert prepared is not None
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    prepared.close()
    assert _gone(int(marker.read_text()))


def test_a_prepared_child_runs_one_job_after_its_preparation(tmp_path: Path) -> None:
    _in_a_fresh_process("_scenario_one_job", tmp_path)


def test_a_prepared_child_keeps_the_limits_and_exceptions(tmp_path: Path) -> None:
    _in_a_fresh_process("_scenario_limits_and_exceptions", tmp_path)


def test_an_unused_prepared_child_exits(tmp_path: Path) -> None:
    _in_a_fresh_process("_scenario_unused", tmp_path)


def test_no_prepared_child_without_limits_or_beside_threads(tmp_path: Path) -> None:
    marker = tmp_path / "never.pid"
    assert PreparedChild.start(partial(_prepare, marker, 1), RenderLimits(0, 0, 0)) is None  # limits off
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert PreparedChild.start(partial(_prepare, marker, 1), RenderLimits()) is None  # no fork beside threads
    finally:
        stop.set()
        thread.join()
    assert not marker.exists()
