"""Helpers for the browser tests: Debian's Chromium through Playwright, a local Dagster instance driven by its CLI,
the Dagster webserver and a static HTTP server, each stopped for sure when the test is done."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from pdfgen_pipeline_tests.ci import in_ci

REPO = Path(__file__).resolve().parent.parent
REFERENTIEL = REPO / "examples" / "referentiel"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (gitignored)
CHROMIUM = Path("/usr/bin/chromium")  # Debian's browser: `playwright install` is not an option here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODULE = "pdfgen_pipeline.definitions"


def require_chromium() -> Path:
    """The Chromium executable; skips the test without it, except in CI where a missing browser is an error."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if in_ci():
        pytest.fail(f"browser tests cannot run in CI: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A free loopback TCP port (for servers that must be told their port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def executable(name: str) -> str:
    """A console script of the running virtualenv (falling back on PATH)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is neither next to {sys.executable} nor on PATH")
    return found


# ----------------------------------------------------------------------------- a local Dagster instance

def local_dagster_env(tmp: Path) -> dict[str, str]:
    """Environment for a throw-away local Dagster: SQLite instance in `tmp/dagster_home`, the bundled sample
    referentiel as production and preparation, generated and artifact stores as local folders under `tmp`."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    # No storage section → SQLite under DAGSTER_HOME; no telemetry calls from a test.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDFGEN_", "AWS_ENDPOINT_URL"))}
    env.update({
        "DAGSTER_HOME": str(home),
        "PDFGEN_REFERENTIEL_URL": str(REFERENTIEL),
        "PDFGEN_PREPARATION_URL": str(REFERENTIEL),
        "PDFGEN_GENERATED_URL": str(tmp / "generated"),
        "PDFGEN_ARTIFACTS_URL": str(tmp / "artifacts"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def dagster_cli(args: list[str], env: dict[str, str], log: Path, timeout: float = 600) -> None:
    """Run `dagster <args>` in the repository; output appended to `log`; fails the test with the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ dagster {' '.join(args)}\n".encode())
        out.flush()
        started = time.monotonic()
        try:
            proc = subprocess.run([executable("dagster"), *args], cwd=REPO, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`dagster {' '.join(args)}` still running after {timeout:.0f} s:\n{tail(log)}")
        out.write(f"(exit {proc.returncode} after {time.monotonic() - started:.1f} s)\n".encode())
    if proc.returncode != 0:
        pytest.fail(f"`dagster {' '.join(args)}` exited with {proc.returncode}:\n{tail(log)}")


def _stop_group(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group led by `proc` (webserver and its code server), SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # The leader may be gone while children of its group (the code server) linger.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def wait_http(url: str, *, proc: subprocess.Popen | None = None, log: Path | None = None,
              timeout: float = 120, interval: float = 0.5) -> None:
    """Poll `url` until it answers 200 (bounded); fail early if `proc` dies."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n"
                               f"{tail(log) if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except (urllib.error.URLError, OSError) as e:
            last = repr(e)
        time.sleep(interval)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s (last: {last})\n{tail(log) if log else ''}")


@contextlib.contextmanager
def dagster_webserver(env: dict[str, str], log: Path, attempts: int = 3) -> Iterator[str]:
    """`dagster-webserver` on a free loopback port in its own process group; yields its base URL once
    `/server_info` answers, and always stops the whole group. Retries on another port if the start fails
    (e.g. the port was taken between choosing and binding it)."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen([executable("dagster-webserver"), "-m", MODULE, "-h", "127.0.0.1",
                                     "-p", str(port)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/server_info", proc=proc, log=log, timeout=180)
        except (RuntimeError, TimeoutError):
            _stop_group(proc)
            if attempt == attempts:
                raise
            continue
        try:
            yield base
        finally:
            _stop_group(proc)
        return


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # requests are not worth the test output
        pass


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on a free loopback port from a daemon thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="static-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ----------------------------------------------------------------------------- the browser

@contextlib.contextmanager
def chromium_context(playwright, user_data_dir: Path, **options):
    """A Chromium browser context with a fresh profile in `user_data_dir` (created empty)."""
    user_data_dir.mkdir(parents=True, exist_ok=False)
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(require_chromium()), headless=True, args=CHROMIUM_ARGS,
        **options)
    try:
        yield context
    finally:
        context.close()


def screenshot_path(name: str) -> Path:
    """Where a screenshot goes (`pdfgen_pipeline_tests/artifacts/<name>`), directory created."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
