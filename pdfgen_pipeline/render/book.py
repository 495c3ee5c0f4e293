"""Render one ouvrage end to end: referentiel folder → HTML → PDF → thumbnail, ISO metadata, report.

Each stage is a function of files in, files out (`build_html`, `build_pdfs`, `build_derived`),
so that the Dagster layer can run them as separate steps; `render_ouvrage` chains them for the
CLI. The work directory holds the HTML and its `assets/`: WeasyPrint reads nothing outside it.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from markupsafe import Markup

from pdfgen_pipeline.ouvrage.loader import load_ouvrage
from pdfgen_pipeline.ouvrage.model import (
    Alinea,
    Document,
    Illustration,
    Metadata,
    Ouvrage,
    Section,
    TableauRef,
    Warning_,
)
from pdfgen_pipeline.render.html import STYLESHEET, STYLESHEET_HREF, FigureResource, Resources, render_html
from pdfgen_pipeline.render.images import AssetIndex, prepare_images
from pdfgen_pipeline.render.inline import normalize_numero
from pdfgen_pipeline.render.limits import PreparedChild, RenderLimits, run_limited
from pdfgen_pipeline.render.metadata import build_iso_metadata, metadata_filename
from pdfgen_pipeline.render.report import GenerationLog, write_report
from pdfgen_pipeline.render.tables import TABLE_CSS, load_table_file, tables_to_html
from pdfgen_pipeline.render.vignette import render_vignette
from pdfgen_pipeline.xmlsafe import XmlInputError

MAIN_PDF = "document.pdf"
VIGNETTE = "vignette.jpg"
LOG = "stderr.log"
REPORT = "report.json"
ARCHIVE = "archive.zip"
HTML_MANIFEST = "html.json"
STEPS = 5


@dataclass
class HtmlDocument:
    """One document's HTML, as written in the work directory."""

    name: str
    html: str  # file name in the work dir
    pdf: str  # file name of its PDF
    title: str
    counts: dict
    toc_entries: int
    index_terms: list[str]


@dataclass
class HtmlStage:
    """What `build_html` produced (also saved as `html.json` in the work dir)."""

    ouvrage: str
    continuous: bool
    documents: list[HtmlDocument]
    metadata: dict = field(default_factory=dict)  # the main document's `Metadata`, as a dict
    warnings: list[Warning_] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def save(self, work_dir: Path) -> None:
        (work_dir / HTML_MANIFEST).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), "utf-8")

    @classmethod
    def load(cls, work_dir: Path) -> HtmlStage:
        data = json.loads((work_dir / HTML_MANIFEST).read_text("utf-8"))
        data["documents"] = [HtmlDocument(**d) for d in data["documents"]]
        data["warnings"] = [Warning_(**w) for w in data["warnings"]]
        return cls(**data)


def pdf_name(doc: Document) -> str:
    """`document.pdf` for the main document, `<name>.pdf` for the others."""
    return MAIN_PDF if doc.name == "document" else f"{doc.name}.pdf"


def _walk_refs(items, figures: list[Illustration], tables: list[TableauRef]) -> None:
    for it in items:
        if isinstance(it, Section):
            _walk_refs(it.children, figures, tables)
        elif isinstance(it, Alinea):
            _walk_refs(it.blocks, figures, tables)
        elif isinstance(it, Illustration):
            figures.append(it)
        elif isinstance(it, TableauRef):
            tables.append(it)


def prepare_resources(ouvrage: Ouvrage, work_dir: Path, log: GenerationLog, *, commun_dir: Path | None,
                      cache_dir: Path | None = None, workers: int = 2) -> dict[str, Resources]:
    """Find and convert every illustration and table of the ouvrage; missing ones become warnings."""
    root = Path(ouvrage.root)
    images = AssetIndex(root, commun_dir, "illustrations")
    tables = AssetIndex(root, commun_dir, "tableaux")
    for w in (*images.warnings, *tables.warnings):
        log.warn(Warning_("asset-lookup", w))
    refs: dict[str, tuple[list[Illustration], list[TableauRef]]] = {}
    wanted: dict[str, Path] = {}
    for doc in ouvrage.documents:
        figs: list[Illustration] = []
        tabs: list[TableauRef] = []
        _walk_refs(doc.content, figs, tabs)
        refs[doc.name] = (figs, tabs)
        for f in figs:
            path = images.find(f.numero)
            if path is not None:
                wanted[normalize_numero(f.numero)] = path
    prepared = prepare_images(list(wanted.values()), work_dir, workers=workers, cache_dir=cache_dir)
    for path, err in prepared.errors.items():
        log.warn(Warning_("image-conversion", f"{err.reason}: a placeholder is printed", str(path)))
    table_html: dict[str, Markup | None] = {}
    out: dict[str, Resources] = {}
    for doc in ouvrage.documents:
        res = Resources()
        figs, tabs = refs[doc.name]
        for f in figs:
            key = normalize_numero(f.numero)
            path = wanted.get(key)
            img = prepared.results.get(path) if path else None
            if img is not None:
                res.images[key] = FigureResource(img.relpath, img.kind)
                for w in img.warnings:
                    log.warn(Warning_("image-warning", w, str(path)))
            else:
                res.images[key] = FigureResource(None)
                if path is None:
                    log.warn(Warning_("missing-image", f"illustration {f.numero} « {f.caption} »: no file in "
                                      "illustrations/ or commun/; a placeholder is printed", doc.path, f.line))
        for t in tabs:
            key = normalize_numero(t.numero)
            if key not in table_html:
                table_html[key] = _table_markup(tables.find(t.numero), t, doc, log)
            res.tables[key] = table_html[key]
        out[doc.name] = res
    log.timed("images", prepared.seconds)
    return out


def _table_markup(path: Path | None, t: TableauRef, doc: Document, log: GenerationLog) -> Markup | None:
    if path is None:
        log.warn(Warning_("missing-table", f"tableau {t.numero} « {t.caption} »: no file in tableaux/ or "
                          "commun/; a placeholder is printed", doc.path, t.line))
        return None
    try:
        tables = load_table_file(path)
    except XmlInputError as exc:
        log.warn(Warning_("table-error", f"{exc.reason}: a placeholder is printed", exc.file, exc.line))
        return None
    for tb in tables:
        for w in tb.warnings:
            log.warn(Warning_("table-warning", w, str(path)))
    return Markup(tables_to_html(tables, table_id=None))


def build_html(ouvrage_dir: Path, work_dir: Path, log: GenerationLog, *, commun_dir: Path | None = None,
               key: str | None = None, cache_dir: Path | None = None) -> HtmlStage:
    """Load the ouvrage and write `<document>.html` + `assets/` for each of its documents."""
    t = time.perf_counter()
    ouvrage = load_ouvrage(ouvrage_dir, key)
    log.timed("load", time.perf_counter() - t)
    for doc in ouvrage.documents:
        for w in doc.warnings:
            log.warn(w)
    work_dir.mkdir(parents=True, exist_ok=True)
    assets = work_dir / "assets"
    assets.mkdir(exist_ok=True)
    (assets / Path(STYLESHEET_HREF).name).write_text(
        STYLESHEET.read_text("utf-8") + "\n/* ---- tables ---- */\n" + TABLE_CSS, "utf-8")
    resources = prepare_resources(ouvrage, work_dir, log, commun_dir=commun_dir, cache_dir=cache_dir)
    t = time.perf_counter()
    stage = HtmlStage(ouvrage=ouvrage.key, continuous=ouvrage.continuous, documents=[],
                      metadata=asdict(ouvrage.main.metadata))
    for doc in ouvrage.documents:
        book = render_html(doc, resources[doc.name], ouvrage_key=ouvrage.key, continuous=ouvrage.continuous)
        for kind, numero in book.broken_links:
            log.warn(Warning_("broken-link", f"lien {kind} to {numero}: no such "
                              f"{'title' if kind == 'texte' else 'illustration'} in this document", doc.path))
        html_file = f"{doc.name}.html"
        (work_dir / html_file).write_text(book.html, encoding="utf-8")
        stage.documents.append(HtmlDocument(
            name=doc.name, html=html_file, pdf=pdf_name(doc), title=book.title, counts=asdict(book.counts),
            toc_entries=len(book.toc), index_terms=[e.term for g in book.index for e in g.entries]))
    log.timed("html", time.perf_counter() - t)
    stage.warnings = list(log.warnings)
    stage.seconds = dict(log.seconds)
    stage.save(work_dir)
    return stage


def import_layout() -> None:
    """Import what the layout uses (WeasyPrint, pikepdf, fontTools): what a `PreparedChild` does first."""
    import fontTools.subset  # noqa: F401
    import pikepdf  # noqa: F401

    import pdfgen_pipeline.render.parallel
    import pdfgen_pipeline.render.pdf  # noqa: F401


def _render_pdf(**kwargs):
    """`pdf.render_pdf` in the render child (imported there: this process need not import WeasyPrint)."""
    from pdfgen_pipeline.render.pdf import render_pdf

    return render_pdf(**kwargs)


def build_pdfs(stage: HtmlStage, work_dir: Path, out_dir: Path, log: GenerationLog,
               limits: RenderLimits | None = None, prepared: PreparedChild | None = None) -> list[dict]:
    """Lay out each document's HTML into its PDF in `out_dir`, each in a child process under `limits`
    (default: `RenderLimits.from_env()`; the first one in `prepared` if given); returns per-document facts.
    A limit hit raises `RenderLimitError`."""
    limits = limits or RenderLimits.from_env()
    results = []
    for d in stage.documents:
        t = time.perf_counter()
        try:
            r = run_limited(_render_pdf, {"html_path": work_dir / d.html, "out_pdf": out_dir / d.pdf,
                                         "sandbox_root": work_dir}, limits, what=f"layout of {d.html}",
                            prepared=prepared)
        except BaseException:
            (out_dir / d.pdf).unlink(missing_ok=True)  # never a half-written PDF
            raise
        log.timed("pdf", time.perf_counter() - t)
        for url, reason in r.refused_urls:
            log.warn(Warning_("resource-refused", f"{url}: {reason}", d.html))
        log.info(f"{d.pdf} : {r.pages} pages ({r.front_pages} liminaires, {r.body_pages} corps, "
                 f"{r.back_pages} index), {r.bytes} octets")
        results.append({"name": d.name, "pdf": d.pdf, "title": d.title, "pages": r.pages,
                        "front_pages": r.front_pages, "body_pages": r.body_pages, "back_pages": r.back_pages,
                        "bytes": r.bytes, "layout_seconds": r.seconds, "counts": d.counts,
                        "toc_entries": d.toc_entries, "toc_unresolved": r.toc_unresolved,
                        "index_unresolved": r.index_unresolved, "bookmarks": r.bookmarks})
    return results


def build_derived(stage: HtmlStage, out_dir: Path, pdfs: list[dict], log: GenerationLog) -> dict[str, str]:
    """Thumbnail of the main PDF, ISO metadata, and `archive.zip` when there are several PDFs."""
    files: dict[str, str] = {}
    t = time.perf_counter()
    main = pdfs[0]
    render_vignette(out_dir / main["pdf"], out_dir / VIGNETTE)
    files["vignette"] = VIGNETTE
    log.timed("vignette", time.perf_counter() - t)
    t = time.perf_counter()
    meta = Metadata.from_dict(stage.metadata)
    name = metadata_filename(meta, stage.ouvrage)
    (out_dir / name).write_bytes(build_iso_metadata(meta, stage.ouvrage, pdf_name=main["pdf"],
                                                    page_count=main["pages"], thumbnail=VIGNETTE))
    files["metadata"] = name
    log.timed("metadata", time.perf_counter() - t)
    if len(pdfs) > 1:
        with zipfile.ZipFile(out_dir / ARCHIVE, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for p in pdfs:
                z.write(out_dir / p["pdf"], arcname=p["pdf"])
        files["archive"] = ARCHIVE
    return files


def render_ouvrage(ouvrage_dir: Path, out_dir: Path, *, commun_dir: Path | None = None, key: str | None = None,
                   echo: TextIO | None = None, cache_dir: Path | None = None) -> dict:
    """Render everything for one ouvrage into `out_dir` (HTML and assets, PDFs, thumbnail, metadata,
    `stderr.log`, `report.json`). Raises `XmlInputError`/`OuvrageError` on unusable input."""
    ouvrage_dir = Path(ouvrage_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if commun_dir is None and (ouvrage_dir.resolve().parent / "commun").is_dir():
        commun_dir = ouvrage_dir.resolve().parent / "commun"
    log = GenerationLog(out_dir / LOG, echo=echo, total_steps=STEPS)
    t0 = time.perf_counter()
    limits = RenderLimits.from_env()
    # the layout child imports WeasyPrint and the rest while this process reads the ouvrage and writes the HTML
    prepared = PreparedChild.start(import_layout, limits)
    try:
        log.step(f"lecture de l’ouvrage {ouvrage_dir} et préparation des illustrations et tableaux (HTML)")
        stage = build_html(ouvrage_dir, out_dir, log, commun_dir=commun_dir, key=key, cache_dir=cache_dir)
        log.step("mise en page et écriture du PDF")
        pdfs = build_pdfs(stage, out_dir, out_dir, log, limits, prepared)
        log.step("vignette, métadonnées ISO 19139 et archive")
        files = build_derived(stage, out_dir, pdfs, log)
        log.step("rapport de génération")
        totals: dict[str, int] = {}
        for p in pdfs:
            for k, v in p["counts"].items():
                if isinstance(v, int):
                    totals[k] = totals.get(k, 0) + v
            totals["pages"] = totals.get("pages", 0) + p["pages"]
        log.timed("total", time.perf_counter() - t0)
        report = write_report(out_dir / REPORT, ouvrage=stage.ouvrage, documents=pdfs, warnings=log.warnings,
                              seconds=log.seconds, counts=totals,
                              extra={"files": {**files, "pdfs": [p["pdf"] for p in pdfs], "log": LOG},
                                     "continuous": stage.continuous})
        log.step(f"terminé : {out_dir / MAIN_PDF} ({totals['pages']} pages, {len(log.warnings)} avertissements)")
        return report
    except Exception as exc:
        log.error(str(exc))
        raise
    finally:
        if prepared is not None:
            prepared.close()
        log.close()

