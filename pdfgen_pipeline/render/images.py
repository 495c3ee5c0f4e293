"""Finding the illustrations (and tables) of an ouvrage and preparing them for WeasyPrint.

Lookup (ouvrage-format.md, section 3.3): an `illustration` or a `tableau` refers to a file by
its numero without the final dot (`1.2.2.A.` -> `1.2.2.A`), optionally prefixed by a name and
`_` (`inc22_1.2.2.A.eps`), searched in the ouvrage's `illustrations/` (or `tableaux/`) tree, then
in the referentiel's `commun/` tree. `AssetIndex` walks each tree once.

Preparation copies or converts a source image into the work directory, next to the HTML:
EPS -> PDF (Ghostscript, always -dSAFER) -> SVG (pdftocairo), PDF -> SVG, SVG -> sanitized SVG,
PNG/JPEG -> verified copy. Every external tool runs with a timeout, a minimal environment,
a private temporary directory as cwd, no stdin, and bounded output.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lxml import etree
from PIL import Image

from pdfgen_pipeline.xmlsafe import MAX_FILE_BYTES as MAX_SVG_BYTES
from pdfgen_pipeline.xmlsafe import XmlInputError, parse_xml_bytes

# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------

#: Illustration extensions, best first (vector before raster).
IMAGE_EXTENSIONS: dict[str, int] = {
    "svg": 0, "pdf": 1, "eps": 2, "epsf": 2, "ps": 2, "png": 3, "jpg": 4, "jpeg": 4,
}
#: Table extensions (flat spreadsheet XML), best first.
TABLE_EXTENSIONS: dict[str, int] = {"xml": 0, "fods": 1}


def numero_key(numero: str) -> str:
    """The file key of a numero: stripped, without the final dot (`1.2.2.A.` -> `1.2.2.A`)."""
    key = numero.strip()
    if key.endswith("."):
        key = key[:-1]
    return key


@dataclass(frozen=True)
class _Entry:
    tree: int  # 0: ouvrage, 1: commun
    numero: str  # as written in the file name
    prefixed: bool
    ext_rank: int
    path: Path


class AssetIndex:
    """Index of the image (or table) files of one ouvrage, built with one walk per tree.

    `subdir` is the ouvrage's folder to search (`illustrations` or `tableaux`); `commun_dir`
    (the referentiel's `commun/`, any sub-folder) is searched after it. Names starting with `.`
    are ignored, and symbolic links resolving outside their tree are skipped (with a warning).
    """

    def __init__(
        self,
        ouvrage_dir: Path,
        commun_dir: Path | None,
        subdir: str = "illustrations",
        *,
        extensions: dict[str, int] | None = None,
    ) -> None:
        if extensions is None:
            extensions = TABLE_EXTENSIONS if subdir.strip("/") == "tableaux" else IMAGE_EXTENSIONS
        self.extensions = {k.lower(): v for k, v in extensions.items()}
        self.warnings: list[str] = []
        self._by_key: dict[str, list[_Entry]] = {}
        self.file_count = 0

        ouvrage_root = Path(ouvrage_dir).resolve()
        tree_dir = Path(ouvrage_dir) / subdir
        if tree_dir.is_dir():
            resolved = tree_dir.resolve()
            if resolved.is_relative_to(ouvrage_root):
                self._walk(resolved, 0)
            else:
                self.warnings.append(f"{tree_dir}: symbolic link outside the ouvrage, ignored")
        if commun_dir is not None and Path(commun_dir).is_dir():
            self._walk(Path(commun_dir).resolve(), 1)

    def _walk(self, root: Path, tree: int) -> None:
        def onerror(exc: OSError) -> None:
            self.warnings.append(f"cannot read {exc.filename}: {exc.strerror}")

        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or "." not in name:
                    continue
                stem, ext = name.rsplit(".", 1)
                ext_rank = self.extensions.get(ext.lower())
                if ext_rank is None or not stem:
                    continue
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                    if stat.S_ISLNK(st.st_mode):
                        target = path.resolve(strict=True)
                        if not target.is_relative_to(root):
                            self.warnings.append(f"{path}: symbolic link pointing outside {root}, ignored")
                            continue
                        st = target.stat()
                        path = target
                except (OSError, RuntimeError):
                    self.warnings.append(f"{path}: broken symbolic link, ignored")
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                prefix, sep, numero = stem.rpartition("_")
                entry = _Entry(tree, numero, bool(sep and prefix), ext_rank, path)
                self._by_key.setdefault(numero.lower(), []).append(entry)
                self.file_count += 1

    def candidates(self, numero: str) -> list[Path]:
        """Every file matching `numero`, best first.

        Order: ouvrage before commun; exact case of the numero before another case; vector
        before raster (svg > pdf > eps > png > jpg); unprefixed before prefixed; then path.
        """
        key = numero_key(numero)
        if not key:
            return []
        entries = self._by_key.get(key.lower(), [])
        ranked = sorted(
            entries, key=lambda e: (e.tree, e.numero != key, e.ext_rank, e.prefixed, str(e.path))
        )
        return [e.path for e in ranked]

    def find(self, numero: str) -> Path | None:
        """The best file for `numero` (with or without its final dot), or None."""
        found = self.candidates(numero)
        return found[0] if found else None

    def __len__(self) -> int:
        return self.file_count


# --------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------

MAX_INPUT_BYTES = 200 * 1024 * 1024
MAX_TOOL_OUTPUT_BYTES = 512 * 1024 * 1024  # files written by gs / pdftocairo (RLIMIT_FSIZE)
MAX_TOOL_LOG_BYTES = 64 * 1024  # kept from a tool's stdout/stderr
MAX_TOOL_MEMORY_BYTES = 1024 * 1024 * 1024  # address space of gs / pdftocairo (RLIMIT_AS)
_OUT_OF_MEMORY = ("VMerror", "bad_alloc", "Cannot allocate memory", "Out of memory")
_MEMORY_LIMIT_HIT = f"memory limit of {MAX_TOOL_MEMORY_BYTES >> 20} MB hit"
DEFAULT_OUT_SUBDIR = "assets/img"
DEFAULT_RASTER_DPI = 150
_CACHE_VERSION = "1"  # bump when the conversion changes, to invalidate caches

Kind = Literal["svg", "png", "jpeg"]
_EXT = {"svg": "svg", "png": "png", "jpeg": "jpg"}


class ImageError(Exception):
    """No usable image could be produced; `str()` names the file and what went wrong."""

    def __init__(self, file: str | Path, reason: str) -> None:
        self.file = Path(file)
        self.reason = reason
        super().__init__(f"{self.file.name}: {reason}")


@dataclass
class PreparedImage:
    """An image ready for the HTML: `relpath` is relative to the work dir (posix separators)."""

    source: Path
    relpath: str
    kind: Kind
    converted_from: str | None = None  # "eps" or "pdf" when converted, None for a (sanitized) copy
    width_pt: float | None = None
    height_pt: float | None = None
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""
    from_cache: bool = False


@dataclass
class _Output:
    data: bytes
    kind: Kind
    converted_from: str | None
    width_pt: float | None
    height_pt: float | None
    warnings: list[str]


class _ToolTimeout(Exception):
    pass


class _ToolFailed(Exception):
    def __init__(self, message: str, log: str) -> None:
        self.log = log
        super().__init__(message)


# -- subprocesses ----------------------------------------------------------------------------


def _which(tool: str, src: Path) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ImageError(src, f"'{tool}' is not installed (needed to convert this image)")
    return path


def _run(argv: list[str], cwd: Path, timeout_s: float) -> str:
    """Run a tool sandboxed-ish; return its (truncated) output or raise _ToolTimeout/_ToolFailed."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "TMPDIR": str(cwd), "LC_ALL": "C", "LANG": "C"}
    prlimit = shutil.which("prlimit")
    if prlimit:  # limits without preexec_fn (unsafe with threads)
        argv = [prlimit, f"--fsize={MAX_TOOL_OUTPUT_BYTES}", f"--as={MAX_TOOL_MEMORY_BYTES}", "--core=0", "--", *argv]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: killed as a whole on timeout
        close_fds=True,
    )
    kept = bytearray()

    def drain() -> None:  # keep the first bytes, discard the rest, never block the tool
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read(65536), b""):
            if len(kept) < MAX_TOOL_LOG_BYTES:
                kept.extend(chunk[: MAX_TOOL_LOG_BYTES - len(kept)])

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(2)
        if proc.stdout is not None:
            proc.stdout.close()
        raise _ToolTimeout() from None
    finally:
        if proc.poll() is None:  # pragma: no cover - interrupted (KeyboardInterrupt...)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(5)
    if proc.stdout is not None:
        proc.stdout.close()
    log = kept.decode("utf-8", "replace")
    if rc == -signal.SIGXFSZ:
        log = f"Error: output larger than {MAX_TOOL_OUTPUT_BYTES} bytes\n{log}"
    elif rc != 0 and any(sign in log for sign in _OUT_OF_MEMORY):
        log = f"Error: {_MEMORY_LIMIT_HIT}\n{log}"
    elif rc < 0:
        log = f"Error: killed by {signal.Signals(-rc).name}\n{log}"
    if rc != 0:
        raise _ToolFailed(f"exit code {rc}", log)
    return log


def _gs_error(log: str) -> str:
    """The meaningful line of a Ghostscript failure (e.g. 'Error: /undefined in foo')."""
    for line in log.splitlines():
        if line.startswith("Error:") or "Unrecoverable error" in line:
            return line.strip()
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _safer_refusal(log: str) -> bool:
    # -dSAFER answers deletefile/renamefile with /ioerror rather than /invalidfileaccess
    return ("/invalidfileaccess" in log or "/invalidaccess" in log
            or "/ioerror in --deletefile--" in log or "/ioerror in --renamefile--" in log)


def _check_output(path: Path, what: str) -> bytes:
    if not path.is_file() or path.stat().st_size == 0:
        raise _ToolFailed(f"{what} produced no output", "")
    return path.read_bytes()


# -- conversions -----------------------------------------------------------------------------


def _svg_output(svg: bytes, src: Path, converted_from: str | None, warnings: list[str]) -> _Output:
    clean, svg_warnings, (w, h) = _sanitize(svg, src)
    return _Output(clean, "svg", converted_from, w, h, warnings + svg_warnings)


def _pdf_to_svg(pdf: Path, tmp: Path, src: Path, timeout_s: float, converted_from: str) -> _Output:
    out = tmp / "out.svg"
    try:
        _run([_which("pdftocairo", src), "-svg", "-f", "1", "-l", "1", pdf.name, out.name], tmp, timeout_s)
    except _ToolFailed as exc:
        raise _ToolFailed(f"pdftocairo failed ({exc}): {_gs_error(exc.log)}", exc.log) from None
    svg = _check_output(out, "pdftocairo")
    if len(svg) > MAX_SVG_BYTES:
        raise _ToolFailed(f"SVG too large ({len(svg)} bytes)", "")
    return _svg_output(svg, src, converted_from, [])


def _convert_eps(data: bytes, src: Path, tmp: Path, timeout_s: float, dpi: int) -> _Output:
    gs = _which("gs", src)
    (tmp / "in.eps").write_bytes(data)  # fixed name: the source name can start with '-'
    common = ["-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOPROMPT", "-q", "-dEPSCrop"]
    vector_error: str
    try:
        _run(
            [gs, *common, "-dAutoRotatePages=/None", "-sDEVICE=pdfwrite", "-sOutputFile=out.pdf",
             "-f", "in.eps"],
            tmp,
            timeout_s,
        )
        _check_output(tmp / "out.pdf", "Ghostscript")
    except _ToolTimeout:
        # the same interpreter would loop again: no raster fallback
        raise ImageError(src, f"Ghostscript (EPS → PDF) timed out after {timeout_s:g} s") from None
    except _ToolFailed as exc:
        if _safer_refusal(exc.log):
            raise ImageError(
                src, f"refused by Ghostscript -dSAFER (file or device access): {_gs_error(exc.log)}"
            ) from None
        if exc.log.startswith(f"Error: {_MEMORY_LIMIT_HIT}"):  # the raster device would exhaust it too
            raise ImageError(src, f"Ghostscript (EPS → PDF): {_MEMORY_LIMIT_HIT}") from None
        vector_error = f"Ghostscript EPS → PDF failed: {_gs_error(exc.log)}"
    else:
        try:
            return _pdf_to_svg(tmp / "out.pdf", tmp, src, timeout_s, "eps")
        except _ToolTimeout:
            vector_error = f"pdftocairo (PDF → SVG) timed out after {timeout_s:g} s"
        except (_ToolFailed, ImageError) as exc:
            vector_error = f"PDF → SVG failed: {exc}"

    # raster fallback, only when the vector conversion failed
    return _raster_fallback(
        [gs, *common, "-sDEVICE=png16m", f"-r{dpi}", "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4",
         "-dFirstPage=1", "-dLastPage=1", "-sOutputFile=out.png", "-f", "in.eps"],
        "Ghostscript", src, tmp, timeout_s, dpi, "eps", vector_error)


def _raster_fallback(argv: list[str], tool: str, src: Path, tmp: Path, timeout_s: float, dpi: int,
                     converted_from: str, vector_error: str) -> _Output:
    """Run a rasterizing command writing `out.png`; the output carries a warning saying why."""
    try:
        _run(argv, tmp, timeout_s)
        png = _check_output(tmp / "out.png", tool)
    except _ToolTimeout:
        raise ImageError(src, f"{vector_error}; raster fallback timed out after {timeout_s:g} s") from None
    except _ToolFailed as exc:
        raise ImageError(src, f"{vector_error}; raster fallback failed: {_gs_error(exc.log)}") from None
    out = _raster_output(png, src, converted_from, default_dpi=dpi)
    out.warnings.insert(0, f"{vector_error}; rasterized at {dpi} dpi instead")
    return out


def _convert_pdf(data: bytes, src: Path, tmp: Path, timeout_s: float, dpi: int) -> _Output:
    (tmp / "in.pdf").write_bytes(data)
    try:
        return _pdf_to_svg(tmp / "in.pdf", tmp, src, timeout_s, "pdf")
    except _ToolTimeout:
        vector_error = f"pdftocairo (PDF → SVG) timed out after {timeout_s:g} s"
    except (_ToolFailed, ImageError) as exc:
        vector_error = f"PDF → SVG failed: {exc}"
    return _raster_fallback(
        [_which("pdftocairo", src), "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", "in.pdf", "out"],
        "pdftocairo", src, tmp, timeout_s, dpi, "pdf", vector_error)


def _raster_output(
    data: bytes, src: Path, converted_from: str | None, *, default_dpi: float | None = None
) -> _Output:
    """Verify a PNG/JPEG with Pillow (decompression-bomb protection on) and describe it."""
    warnings: list[str] = []
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # verify() does not decode: a truncated image is caught here
            width, height = im.size
            dpi = im.info.get("dpi")
    except Image.DecompressionBombError as exc:
        raise ImageError(src, f"image too large (decompression bomb protection): {exc}") from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        raise ImageError(src, f"corrupt or unreadable image: {exc}") from None
    if fmt not in ("PNG", "JPEG"):
        raise ImageError(src, f"unsupported raster format {fmt} (PNG or JPEG expected)")
    kind: Kind = "png" if fmt == "PNG" else "jpeg"
    resolution: float | None = None
    if dpi and isinstance(dpi, tuple) and float(dpi[0]) > 1:
        resolution = float(dpi[0])
    elif default_dpi:
        resolution = float(default_dpi)
    w_pt = h_pt = None
    if resolution:
        w_pt, h_pt = width * 72 / resolution, height * 72 / resolution
    return _Output(data, kind, converted_from, w_pt, h_pt, warnings)


# -- SVG sanitizing --------------------------------------------------------------------------

_SVG_NS = "http://www.w3.org/2000/svg"
_DROP_ELEMENTS = {"script", "foreignobject", "handler", "listener", "iframe", "embed", "object"}
_ANIMATIONS = {"set", "animate", "animatetransform", "animatemotion", "animatecolor"}
_SAFE_DATA = re.compile(r"^\s*data:image/(png|jpeg|jpg|gif|webp)[;,]", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*?))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import\b[^;]*;?", re.IGNORECASE)
_PLAIN_DOCTYPE = re.compile(rb"<!DOCTYPE\s+svg\b[^\[\]<>]*>", re.IGNORECASE)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(pt|px|mm|cm|in|pc|)\s*$")
_TO_PT = {"pt": 1.0, "px": 0.75, "": 0.75, "mm": 72 / 25.4, "cm": 72 / 2.54, "in": 72.0, "pc": 12.0}


def _local_ref(value: str) -> bool:
    v = value.strip()
    return v.startswith("#") or bool(_SAFE_DATA.match(v))


def _clean_css(text: str, where: str, warnings: list[str]) -> str:
    def url(m: re.Match[str]) -> str:
        target = next(g for g in m.groups() if g is not None)
        if _local_ref(target):
            return m.group(0)
        warnings.append(f"removed external reference {target[:120]!r} from {where}")
        return "none"

    def imp(m: re.Match[str]) -> str:
        warnings.append(f"removed {m.group(0)[:120]!r} from {where}")
        return ""

    return _CSS_URL.sub(url, _CSS_IMPORT.sub(imp, text))


def _remove(el: etree._Element) -> None:
    """Remove `el`, keeping its tail text (it belongs to the parent)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _length_pt(value: str | None) -> float | None:
    if not value:
        return None
    m = _LENGTH.match(value)
    return float(m.group(1)) * _TO_PT[m.group(2)] if m else None


def _svg_size(root: etree._Element) -> tuple[float | None, float | None]:
    w, h = _length_pt(root.get("width")), _length_pt(root.get("height"))
    if w is None or h is None:
        box = (root.get("viewBox") or "").replace(",", " ").split()
        if len(box) == 4:
            try:
                vw, vh = float(box[2]) * 0.75, float(box[3]) * 0.75
            except ValueError:
                return w, h
            if w is None and h is None:
                return vw, vh
            if w is None and h is not None and vh:
                return h * vw / vh, h
            if h is None and w is not None and vw:
                return w, w * vh / vw
    return w, h


def _sanitize(data: bytes, src: Path) -> tuple[bytes, list[str], tuple[float | None, float | None]]:
    warnings: list[str] = []
    head = data[:4096]
    if b"<!DOCTYPE" in head.upper() and _PLAIN_DOCTYPE.search(head):
        # a plain SVG 1.1 DOCTYPE (no internal subset, so no entity) is harmless: drop it
        data = _PLAIN_DOCTYPE.sub(b"", data, count=1)
    try:
        tree = parse_xml_bytes(data, src, max_bytes=MAX_SVG_BYTES)
    except XmlInputError as exc:
        raise ImageError(src, f"invalid SVG: {exc}") from None
    root = tree.getroot()
    if not isinstance(root.tag, str) or etree.QName(root).localname != "svg":
        raise ImageError(src, f"not an SVG document (root element {root.tag!r})")

    doomed: list[etree._Element] = []
    for el in root.iter():
        if not isinstance(el.tag, str):  # processing instruction (e.g. xml-stylesheet), entity
            doomed.append(el)
            continue
        local = etree.QName(el).localname.lower()
        if local in _DROP_ELEMENTS:
            warnings.append(f"removed <{etree.QName(el).localname}> element")
            doomed.append(el)
            continue
        if local in _ANIMATIONS and (el.get("attributeName") or "").lower().endswith("href"):
            warnings.append(f"removed <{local}> changing a link")
            doomed.append(el)
            continue
        if local == "style" and el.text:
            el.text = _clean_css(el.text, "<style>", warnings)
        for attr in list(el.attrib):
            attr_local = etree.QName(attr).localname.lower()
            value = el.attrib[attr]
            if attr_local.startswith("on"):
                warnings.append(f"removed event handler {attr_local}= on <{local}>")
                del el.attrib[attr]
            elif attr_local in ("href", "src"):
                if not _local_ref(value):
                    warnings.append(f"removed external reference {value[:120]!r} on <{local}>")
                    del el.attrib[attr]
                    if local in ("image", "feimage"):  # nothing left to draw (WeasyPrint would log an error)
                        doomed.append(el)
            elif attr == "{http://www.w3.org/XML/1998/namespace}base":
                del el.attrib[attr]
            elif "url(" in value.lower() or "@import" in value.lower():
                el.attrib[attr] = _clean_css(value, f"{attr_local}= on <{local}>", warnings)
    for el in doomed:
        _remove(el)
    size = _svg_size(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), warnings, size


def sanitize_svg(data: bytes, file: str | Path = "image.svg") -> tuple[bytes, list[str]]:
    """Sanitized SVG bytes and the warnings: no script, foreignObject, on* handler, external href.

    Raises `ImageError` when the SVG cannot be parsed by the hardened parser.
    """
    clean, warnings, _ = _sanitize(data, Path(file))
    return clean, [f"{Path(file).name}: {w}" for w in warnings]


# -- format detection, cache, output ----------------------------------------------------------


def _sniff(data: bytes, src: Path) -> tuple[str, list[str]]:
    head = data[:1024]
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        fmt = "eps"
    elif b"%PDF-" in head:
        fmt = "pdf"
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        fmt = "png"
    elif head.startswith(b"\xff\xd8\xff"):
        fmt = "jpeg"
    elif b"<svg" in data[:8192] or b"<svg" in data[:16384].replace(b"\x00", b""):
        fmt = "svg"
    else:
        raise ImageError(src, "unrecognized image format (expected EPS, PDF, SVG, PNG or JPEG)")
    ext = src.suffix.lower().lstrip(".")
    expected = {"eps": "eps", "epsf": "eps", "ps": "eps", "pdf": "pdf", "png": "png", "jpg": "jpeg",
                "jpeg": "jpeg", "svg": "svg"}.get(ext)
    warnings = []
    if expected is not None and expected != fmt:
        warnings.append(f"the file is {fmt.upper()} despite its extension .{ext}")
    return fmt, warnings


_key_locks: dict[str, threading.Lock] = {}
_key_locks_guard = threading.Lock()
_output_lock = threading.Lock()


@contextlib.contextmanager
def _locked(key: str) -> Iterator[None]:
    with _key_locks_guard:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        yield


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cache_load(cache_dir: Path, key: str) -> _Output | None:
    meta_path = cache_dir / key[:2] / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        data = (cache_dir / key[:2] / f"{key}.{_EXT[meta['kind']]}").read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["output_sha256"]:
            return None
        return _Output(data, meta["kind"], meta["converted_from"], meta["width_pt"], meta["height_pt"],
                       list(meta["warnings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_store(cache_dir: Path, key: str, out: _Output) -> None:
    folder = cache_dir / key[:2]
    meta = {k: v for k, v in asdict(out).items() if k != "data"}
    meta["output_sha256"] = hashlib.sha256(out.data).hexdigest()
    try:
        _atomic_write(folder / f"{key}.{_EXT[out.kind]}", out.data)
        _atomic_write(folder / f"{key}.json", json.dumps(meta).encode())
    except OSError:
        pass  # a cache that cannot be written is not an error of the image


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _write_output(work_dir: Path, out_subdir: str, src: Path, out: _Output, digest: str) -> str:
    stem = _SAFE_NAME.sub("_", src.stem).lstrip(".-") or "image"
    ext = _EXT[out.kind]
    folder = work_dir / out_subdir
    with _output_lock:
        target = folder / f"{stem}.{ext}"
        if target.exists() and target.read_bytes() != out.data:
            target = folder / f"{stem}-{digest[:10]}.{ext}"
        if not target.exists() or target.read_bytes() != out.data:
            _atomic_write(target, out.data)
    return target.relative_to(work_dir).as_posix()


def prepare_image(
    src: Path,
    work_dir: Path,
    *,
    timeout_s: float = 60,
    cache_dir: Path | None = None,
    out_subdir: str = DEFAULT_OUT_SUBDIR,
    raster_dpi: int = DEFAULT_RASTER_DPI,
) -> PreparedImage:
    """Copy or convert `src` into `work_dir/out_subdir` and describe the result.

    EPS -> SVG (Ghostscript -dSAFER then pdftocairo; PNG at `raster_dpi` only if that fails),
    PDF -> SVG of page 1, SVG -> sanitized SVG, PNG/JPEG -> verified copy. Each tool run is
    limited to `timeout_s` seconds. Results are cached by content hash in `cache_dir`.
    Raises `ImageError` naming the file when nothing usable can be produced.
    """
    src = Path(src)
    work_dir = Path(work_dir)
    try:
        size = src.stat().st_size
        if not src.is_file():
            raise ImageError(src, "not a regular file")
        if size > MAX_INPUT_BYTES:
            raise ImageError(src, f"file too large ({size} bytes, limit {MAX_INPUT_BYTES})")
        data = src.read_bytes()
    except FileNotFoundError:
        raise ImageError(src, "file not found") from None
    except OSError as exc:
        raise ImageError(src, f"cannot read: {exc.strerror}") from None
    if not data:
        raise ImageError(src, "empty file")
    fmt, sniff_warnings = _sniff(data, src)
    digest = hashlib.sha256(data).hexdigest()
    key = hashlib.sha256(f"{digest}|{fmt}|{raster_dpi}|{_CACHE_VERSION}".encode()).hexdigest()

    with _locked(key):
        out = _cache_load(Path(cache_dir), key) if cache_dir is not None else None
        from_cache = out is not None
        if out is None:
            if fmt in ("png", "jpeg"):
                out = _raster_output(data, src, None)
            elif fmt == "svg":
                out = _svg_output(data, src, None, [])
            else:
                with tempfile.TemporaryDirectory(prefix="pdfgen-img-") as tmp:
                    convert = _convert_eps if fmt == "eps" else _convert_pdf
                    out = convert(data, src, Path(tmp), timeout_s, raster_dpi)
            if cache_dir is not None:
                _cache_store(Path(cache_dir), key, out)

    try:
        relpath = _write_output(work_dir, out_subdir, src, out, digest)
    except OSError as exc:
        raise ImageError(src, f"cannot write the prepared image: {exc}") from None
    return PreparedImage(
        source=src,
        relpath=relpath,
        kind=out.kind,
        converted_from=out.converted_from,
        width_pt=out.width_pt,
        height_pt=out.height_pt,
        warnings=[f"{src.name}: {w}" for w in (*sniff_warnings, *out.warnings)],
        sha256=digest,
        from_cache=from_cache,
    )


@dataclass
class PreparedImages:
    """Outcome of `prepare_images`: one entry per distinct source path."""

    results: dict[Path, PreparedImage] = field(default_factory=dict)
    errors: dict[Path, ImageError] = field(default_factory=dict)
    seconds: float = 0.0


def prepare_images(
    paths: Iterable[Path],
    work_dir: Path,
    *,
    workers: int = 2,
    timeout_s: float = 60,
    cache_dir: Path | None = None,
    out_subdir: str = DEFAULT_OUT_SUBDIR,
    raster_dpi: int = DEFAULT_RASTER_DPI,
) -> PreparedImages:
    """Prepare many images with a thread pool (the work happens in subprocesses).

    Each path is prepared once; failures are collected in `errors` instead of raised.
    """
    unique: Sequence[Path] = list(dict.fromkeys(Path(p) for p in paths))
    report = PreparedImages()
    start = time.monotonic()

    def one(path: Path) -> tuple[Path, PreparedImage | ImageError]:
        try:
            return path, prepare_image(
                path, work_dir, timeout_s=timeout_s, cache_dir=cache_dir, out_subdir=out_subdir,
                raster_dpi=raster_dpi,
            )
        except ImageError as exc:
            return path, exc

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pdfgen-img") as pool:
        for path, result in pool.map(one, unique):
            if isinstance(result, ImageError):
                report.errors[path] = result
            else:
                report.results[path] = result
    report.seconds = time.monotonic() - start
    return report
