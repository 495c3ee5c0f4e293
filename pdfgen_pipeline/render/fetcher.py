"""WeasyPrint sandbox: an URL fetcher that reads nothing outside the ouvrage's working directory.

`SandboxedURLFetcher(root)` serves `file:` URLs whose resolved path (symlinks followed) lies
inside `root`, and `data:` URLs. Everything else (http, https, ftp, any other scheme, files
outside the root, symlinks escaping it, PDF attachments / embedded files) is refused: the
refusal is recorded in `refusals` and an exception WeasyPrint catches is raised, so the
resource is skipped with a warning instead of stopping the rendering.
"""

from __future__ import annotations

import mimetypes
import os
import stat
import sys
import threading
from pathlib import Path
from typing import NoReturn
from urllib import request
from urllib.parse import urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse, URLFetchingError

# A single resource (image, stylesheet, font) larger than this is refused.
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
_MAX_RECORDED_URL = 300

# Functions of WeasyPrint that fetch a resource to embed it as a PDF attachment (embedded file).
_ATTACHMENT_FRAMES = frozenset({"write_pdf_attachment"})


class SandboxRefusal(URLFetchingError):
    """A resource refused by the sandbox; WeasyPrint catches it and skips the resource."""


def _short(url: str) -> str:
    return url if len(url) <= _MAX_RECORDED_URL else url[:_MAX_RECORDED_URL] + "…"


def _fetching_attachment() -> bool:
    """True when the current fetch comes from WeasyPrint's embedded-file (attachment) writer."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name in _ATTACHMENT_FRAMES and "weasyprint" in code.co_filename:
            return True
        frame = frame.f_back
    return False


class SandboxedURLFetcher(URLFetcher):
    """URL fetcher serving only `file:` URLs inside `root` and `data:` URLs.

    `root=None` refuses every `file:` URL. Refusals are recorded as `(url, reason)` in
    `refusals`; `served` lists the `file:` paths that were read.
    """

    def __init__(
        self,
        root: Path | str | None,
        *,
        allow_data: bool = True,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        # No redirects, never fatal: a refused resource is skipped, not a crash.
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False, fail_on_errors=False)
        self.root: Path | None = Path(root).resolve(strict=True) if root is not None else None
        if self.root is not None and not self.root.is_dir():
            raise NotADirectoryError(f"sandbox root is not a directory: {self.root}")
        self.allow_data = allow_data
        self.max_file_bytes = max_file_bytes
        self.refusals: list[tuple[str, str]] = []
        self.served: list[Path] = []
        self._lock = threading.Lock()

    # -- WeasyPrint entry point -------------------------------------------------------------
    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        """Serve `url` if the sandbox allows it, else record the refusal and raise `SandboxRefusal`."""
        self._request = None  # set by OpenerDirector.open(Request): never reused
        if _fetching_attachment():
            self._refuse(url, "attachments (embedded files) are not allowed")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "file":
            return self._fetch_file(url)
        if scheme == "data":
            if not self.allow_data:
                self._refuse(url, "data: URLs are not allowed in this document")
            return self._fetch_data(url)
        if not scheme:
            self._refuse(url, "not an absolute URL")
        self._refuse(url, f"scheme '{scheme}' is not allowed (only files inside the work directory)")

    def warnings(self) -> list[str]:
        """The refusals as one-line warning messages, in the order they happened."""
        with self._lock:
            return [f"resource refused: {url} ({reason})" for url, reason in self.refusals]

    # -- internals ----------------------------------------------------------------------------
    def _refuse(self, url: str, reason: str) -> NoReturn:
        with self._lock:
            self.refusals.append((_short(url), reason))
        raise SandboxRefusal(f"{reason}: {_short(url)}")

    def _fetch_data(self, url: str) -> URLFetcherResponse:
        try:
            response = request.DataHandler().data_open(request.Request(url))
        except (ValueError, OSError) as exc:
            self._refuse(url, f"malformed data: URL ({exc})")
        return URLFetcherResponse(url, response, dict(response.headers.items()), 200)

    def _fetch_file(self, url: str) -> URLFetcherResponse:
        if self.root is None:
            self._refuse(url, "no file may be read by this document")
        try:
            parts = urlsplit(url)
        except ValueError:
            self._refuse(url, "malformed URL")
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, f"file URL on another host '{parts.netloc}'")
        raw_path = request.url2pathname(parts.path)
        if "\x00" in raw_path:
            self._refuse(url, "NUL byte in path")
        try:
            resolved = Path(raw_path).resolve(strict=True)
        except (OSError, RuntimeError):
            self._refuse(url, "file not found")
        assert self.root is not None
        if not resolved.is_relative_to(self.root):
            if Path(os.path.abspath(raw_path)).is_relative_to(self.root):
                self._refuse(url, "symbolic link pointing outside the work directory")
            self._refuse(url, "outside the work directory")
        if not resolved.is_file():
            self._refuse(url, "not a regular file")
        # O_NONBLOCK: a FIFO swapped in after the check must not hang the rendering
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(resolved, flags)
        except OSError as exc:
            self._refuse(url, f"cannot open ({exc.strerror})")
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._refuse(url, "not a regular file")
        if st.st_size > self.max_file_bytes:
            os.close(fd)
            self._refuse(url, f"file too large ({st.st_size} bytes, limit {self.max_file_bytes})")
        body = os.fdopen(fd, "rb")
        content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
        with self._lock:
            self.served.append(resolved)
        clean_url = url.split("?", 1)[0].split("#", 1)[0]
        return URLFetcherResponse(
            clean_url, body, {"Content-Type": content_type, "Content-Length": str(st.st_size)}, 200
        )


def deny_all_fetcher(*, allow_data: bool = False) -> SandboxedURLFetcher:
    """A fetcher that refuses every resource (optionally except `data:` URLs)."""
    return SandboxedURLFetcher(None, allow_data=allow_data)
