"""Watching what a case touches.

- An audit hook (`sys.addaudithook`, installed once per process: hooks cannot be removed) records
  the files Python opens, lists, creates, removes or renames, the subprocesses and the network
  connections, but only while a `Recording` is active; the rest of the time it returns at once.
- A `Tripwire` is a FIFO that notices any reader, including C libraries (libxml2) and subprocesses
  (Ghostscript), which the audit hook cannot see.
- A `Listener` is a TCP port on 127.0.0.1 that counts connections (SSRF attempts).
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import os
import socket
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pdfgen_pipeline

PASSWD_MARK = b"root:x:0:0"
TRIPWIRE_PAYLOAD = b"TRIPWIRE-7c1e-SECRET-CONTENT\n"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_OUR_THREADS = ("hostile-tripwire", "hostile-listener")

#: Read-only places any render may open: the interpreter, its packages, system libraries and fonts.
SYSTEM_READ = tuple(dict.fromkeys(str(Path(p).resolve()) for p in (
    sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"], "/usr", "/etc/fonts",
    "/proc/self", "/dev/null", "/dev/urandom", "/etc/localtime", "/etc/ssl", "/etc/pki",
    Path(pdfgen_pipeline.__file__).parent,  # templates and the stylesheet
    *mimetypes.knownfiles,  # read by mimetypes.init() (the fetcher guesses content types)
)))


@dataclass
class Recording:
    """What happened while recording (paths are absolute, as given: symbolic links not resolved)."""

    opened: list[tuple[str, bool]] = field(default_factory=list)  # (path, opened for writing)
    listed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # mkdir, remove, rename (both ends), symlink, rmtree
    popen: list[list[str]] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)

    def paths_read(self) -> list[str]:
        return [p for p, _ in self.opened]

    def paths_written(self) -> list[str]:
        return [p for p, w in self.opened if w] + self.changed


_current: Recording | None = None
_installed = False
_install_lock = threading.Lock()


def _abs(p: object) -> str | None:
    if isinstance(p, (str, bytes, os.PathLike)):
        return os.path.abspath(os.fsdecode(p))
    return None  # a file descriptor


def _relative_to_dir_fd() -> bool:
    """shutil.rmtree opens and removes entries relative to a directory descriptor: not attributable."""
    frame = sys._getframe(2)
    return frame is not None and frame.f_code.co_name.startswith("_rmtree")


def _hook(event: str, args: tuple) -> None:
    rec = _current
    if rec is None or threading.current_thread().name.startswith(_OUR_THREADS):
        return
    if event == "open":
        raw = args[0]
        if isinstance(raw, (str, bytes)) and not os.path.isabs(os.fsdecode(raw)) and _relative_to_dir_fd():
            return
        path = _abs(raw)
        if path is not None:
            mode, flags = args[1], args[2]
            write = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            rec.opened.append((path, write))
    elif event in ("os.listdir", "os.scandir"):
        path = _abs(args[0]) if args and args[0] is not None else None
        if path is not None:
            rec.listed.append(path)
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):  # (path, ..., dir_fd)
        if args[-1] in (None, -1) and (path := _abs(args[0])) is not None:
            rec.changed.append(path)
    elif event in ("os.symlink", "os.link"):  # (target, link, ...): the link is what gets created
        if args[-1] in (None, -1) and (path := _abs(args[1])) is not None:
            rec.changed.append(path)
    elif event == "os.rename":
        if args[2] in (None, -1) and args[3] in (None, -1):
            rec.changed.extend(p for p in (_abs(args[0]), _abs(args[1])) if p is not None)
    elif event == "subprocess.Popen":
        rec.popen.append([os.fsdecode(a) for a in args[1]] if isinstance(args[1], (list, tuple)) else [str(args[1])])
    elif event == "socket.connect":
        rec.connects.append(repr(args[1]))


def install() -> None:
    """Install the hook once per process (later calls do nothing)."""
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Record everything the process does until the block ends (not re-entrant)."""
    global _current
    install()
    assert _current is None, "recordings do not nest"
    rec = Recording()
    _current = rec
    try:
        yield rec
    finally:
        _current = None


def _under(path: str, roots: Iterable[str]) -> bool:
    real = os.path.realpath(path)  # a symbolic link counts where it points
    return any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)


def outside(paths: Iterable[str], roots: Iterable[str]) -> list[str]:
    """The paths (resolved) that are under none of `roots` (resolved too), without duplicates."""
    resolved = [os.path.realpath(r) for r in roots]
    return sorted({os.path.realpath(p) for p in paths if not _under(p, resolved)})


def assert_confined(rec: Recording, *, read: Iterable[Path | str], write: Iterable[Path | str],
                    network: bool = False) -> None:
    """Nothing was opened outside `read` + `write` + SYSTEM_READ, nothing written outside `write`,
    no directory listed outside them (nor the import path), Ghostscript always had -dSAFER, and no
    network connection was made unless `network`."""
    write_roots = [*(str(p) for p in write), "/dev/null"]  # subprocess.DEVNULL is opened read-write
    read_roots = [*write_roots, *(str(p) for p in read), *SYSTEM_READ]
    assert "/etc/passwd" not in {os.path.realpath(p) for p in rec.paths_read()}, "/etc/passwd was opened"
    assert not (bad := outside(rec.paths_read(), read_roots)), f"opened outside the work directory: {bad}"
    assert not (bad := outside(rec.paths_written(), write_roots)), f"written outside the work directory: {bad}"
    listing_roots = [*read_roots, *(p for p in sys.path if p)]
    assert not (bad := outside(rec.listed, listing_roots)), f"listed outside the work directory: {bad}"
    for argv in rec.popen:
        if any(Path(a).name == "gs" for a in argv):
            assert "-dSAFER" in argv and "-dNOSAFER" not in argv, argv
    if not network:
        assert not rec.connects, f"network connections: {rec.connects}"


class Tripwire:
    """A FIFO at `path` that records whether anything opened it for reading, from any process.

    A reader blocks until a writer appears: the watcher thread is that writer. It hands over
    `TRIPWIRE_PAYLOAD` (so a leak of it can be searched for) and closes, so the reader never hangs.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        os.mkfifo(self.path)
        self.tripped = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"hostile-tripwire {self.path.name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    return
                time.sleep(0.01)
                continue
            self.tripped.set()
            with contextlib.suppress(OSError):
                os.write(fd, TRIPWIRE_PAYLOAD)
            os.close(fd)
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    @property
    def uri(self) -> str:
        return self.path.as_uri()


class Listener:
    """A TCP listener on 127.0.0.1 counting the connections it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-listener", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> int:
        """Stop (once) and return the number of connections (including any still in the backlog)."""
        if self._stop.is_set():
            return self.connections
        self._stop.set()
        self._thread.join(2)
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            conn, _ = self.sock.accept()
            self.connections += 1
            conn.close()
        self.sock.close()
        return self.connections


def processes_in(directory: Path) -> list[int]:
    """Pids of live processes whose working directory is inside `directory` (a tool left running)."""
    root = os.path.realpath(directory)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            pids.append(int(entry))
    return pids


def leaks_in(directory: Path, marks: Iterable[bytes]) -> list[str]:
    """Files under `directory` whose bytes, or whose PDF text, contain one of `marks`."""
    import pypdfium2 as pdfium

    found = []
    marks = list(marks)
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        texts = [data]
        if path.suffix == ".pdf":
            pdf = pdfium.PdfDocument(data)
            texts.append("".join(page.get_textpage().get_text_range() for page in pdf).encode())
            pdf.close()
        found += [f"{path}: {m.decode()}" for m in marks for t in texts if m in t]
    return found
