"""The pipeline's steps as plain functions over stores: referentiel → source snapshot → HTML → PDF →
thumbnail, ISO metadata → publication, and the catalogue. No Dagster here: the Dagster layer
(`defs/`) calls these and turns their results into materializations.

Steps hand each other small JSON "pointers" naming artifacts in the artifact store (never the
bytes), so any step can run in another process or on another machine.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from pdfgen_pipeline import __version__
from pdfgen_pipeline.ouvrage.keys import validate_ouvrage_key
from pdfgen_pipeline.ouvrage.model import Metadata, Warning_
from pdfgen_pipeline.referentiel import OuvrageListing, snapshot_ouvrage, visible
from pdfgen_pipeline.render.book import ARCHIVE, LOG, REPORT, VIGNETTE, HtmlStage, build_html, build_pdfs
from pdfgen_pipeline.render.catalogue import CATALOGUE_HTML, CATALOGUE_JSON, build_catalogue
from pdfgen_pipeline.render.metadata import build_iso_metadata, metadata_filename
from pdfgen_pipeline.render.report import GenerationLog, write_report
from pdfgen_pipeline.render.verify import pdf_health
from pdfgen_pipeline.render.vignette import render_vignette
from pdfgen_pipeline.stores.artifacts import artifact_prefix, download_zip, upload_zip
from pdfgen_pipeline.stores.base import Store, join_key
from pdfgen_pipeline.stores.publication import MANIFEST, Published, publish, published_keys, read_manifest

#: Bump when a change of the renderer changes its output: artifacts and data versions follow it.
RENDER_CODE_VERSION = f"{__version__}-r4"
STEPS = 5
MAX_WARNINGS_IN_POINTER = 500


def _log(path: Path, first_step: int) -> GenerationLog:
    return GenerationLog(path, total_steps=STEPS, first_step=first_step)


def _reused(artifacts: Store, key: str) -> dict | None:
    """A step's saved pointer, when the same inputs were already processed by the same code."""
    if artifacts.stat(key) is None:
        return None
    try:
        return {**json.loads(artifacts.read_bytes(key)), "reused": True}
    except ValueError:
        return None


def _save(artifacts: Store, key: str, pointer: dict) -> dict:
    artifacts.write_bytes(key, json.dumps(pointer, ensure_ascii=False).encode("utf-8"), "application/json")
    return pointer


def source_step(referentiel: Store, artifacts: Store, key: str, tmp: Path) -> dict:
    """Snapshot ouvrage `key` (and the `commun/` files it uses) into the artifact store.

    When the ouvrage's files (ETags) and the `commun/` files it used are unchanged since a previous
    snapshot by this code version, that snapshot is reused without downloading anything."""
    t = time.perf_counter()
    listing = OuvrageListing(key, [o for o in referentiel.list(f"{validate_ouvrage_key(key)}/") if visible(o.key)])
    by_version = join_key(key, "_sources", RENDER_CODE_VERSION, f"{listing.version}.json")
    previous = _reused(artifacts, by_version)
    if previous and all((info := referentiel.stat(k)) is not None and info.etag == etag
                        for k, etag in previous.get("commun_etags", {}).items()):
        return {**previous, "seconds": round(time.perf_counter() - t, 3)}
    snap = snapshot_ouvrage(referentiel, key, tmp / "snapshot")
    prefix = artifact_prefix(key, snap.content_hash, RENDER_CODE_VERSION)
    source_key = join_key(prefix, "source.zip")
    size = upload_zip(artifacts, source_key, snap.root, tmp / "zip")
    commun_etags = {k: info.etag for k in snap.commun_files if (info := referentiel.stat(k)) is not None}
    pointer = {"ouvrage": key, "content_hash": snap.content_hash, "source_version": snap.source_version,
               "prefix": prefix, "source": source_key, "files": len(snap.files), "commun": snap.commun_files,
               "commun_etags": commun_etags, "bytes": snap.bytes, "zip_bytes": size,
               "referentiel": referentiel.location(key), "seconds": round(time.perf_counter() - t, 3)}
    return _save(artifacts, by_version, pointer)


def html_step(artifacts: Store, source: dict, tmp: Path) -> dict:
    """Source snapshot → HTML of every document (+ converted images, tables) as `html.zip`."""
    if done := _reused(artifacts, join_key(source["prefix"], "html.json")):
        return done
    snap = download_zip(artifacts, source["source"], tmp / "snapshot")
    work = tmp / "work"
    log = _log(work / "html.log", 1)
    log.step(f"lecture de l’ouvrage {source['ouvrage']} et préparation des illustrations et tableaux (HTML)")
    try:
        stage = build_html(snap / source["ouvrage"], work, log, commun_dir=snap / "commun", key=source["ouvrage"])
    except Exception as exc:
        log.error(str(exc))
        raise
    finally:
        log.close()
    html_key = join_key(source["prefix"], "html.zip")
    size = upload_zip(artifacts, html_key, work, tmp / "zip")
    counts: dict[str, int] = {}
    for d in stage.documents:
        for k, v in d.counts.items():
            if isinstance(v, int):
                counts[k] = counts.get(k, 0) + v
    return _save(artifacts, join_key(source["prefix"], "html.json"), {
            **_base(source), "html": html_key, "zip_bytes": size, "continuous": stage.continuous,
            "documents": [{"name": d.name, "html": d.html, "pdf": d.pdf, "title": d.title} for d in stage.documents],
            "title": stage.documents[0].title, "counts": counts,
            "warnings": [w.__dict__ for w in stage.warnings[:MAX_WARNINGS_IN_POINTER]],
            "warning_count": len(stage.warnings), "seconds": stage.seconds})


def _base(pointer: dict) -> dict:
    return {k: pointer[k] for k in ("ouvrage", "content_hash", "source_version", "prefix")}


def pdf_step(artifacts: Store, html: dict, tmp: Path) -> dict:
    """HTML → one PDF per document, each uploaded under `pdf/`, with a health check of each."""
    if done := _reused(artifacts, join_key(html["prefix"], "pdf.json")):
        return done
    work = download_zip(artifacts, html["html"], tmp / "work")
    stage = HtmlStage.load(work)
    out = tmp / "pdf"
    out.mkdir(parents=True, exist_ok=True)
    log = _log(out / "pdf.log", 2)
    log.step("mise en page et écriture du PDF")
    try:
        results = build_pdfs(stage, work, out, log)
    except Exception as exc:
        log.error(str(exc))
        raise
    finally:
        log.close()
    pdfs = []
    for r in results:
        key = join_key(html["prefix"], "pdf", r["pdf"])
        artifacts.upload_file(key, out / r["pdf"], "application/pdf")
        health = pdf_health(out / r["pdf"])
        pdfs.append({**r, "key": key, "health": {"pages": health.pages, "pages_with_text": health.pages_with_text,
                                                 "chars": health.chars, "problems": health.problems}})
    log_key = join_key(html["prefix"], "pdf", "pdf.log")
    artifacts.upload_file(log_key, out / "pdf.log", "text/plain; charset=utf-8")
    return _save(artifacts, join_key(html["prefix"], "pdf.json"), {
        **_base(html), "pdfs": pdfs, "log": log_key, "warnings": [w.__dict__ for w in log.warnings],
        "pages": sum(p["pages"] for p in pdfs), "seconds": log.seconds})


def vignette_step(artifacts: Store, pdf: dict, tmp: Path) -> dict:
    """Page 1 of the main PDF → `vignette.jpg` (150 dpi)."""
    if done := _reused(artifacts, join_key(pdf["prefix"], "vignette.json")):
        return done
    main = tmp / "document.pdf"
    artifacts.download_file(pdf["pdfs"][0]["key"], main)
    t = time.perf_counter()
    width, height = render_vignette(main, tmp / VIGNETTE)
    key = join_key(pdf["prefix"], VIGNETTE)
    artifacts.upload_file(key, tmp / VIGNETTE, "image/jpeg")
    with Image.open(tmp / VIGNETTE) as im:  # a small preview, shown in the Dagster UI
        im.thumbnail((180, 260))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70)
    return _save(artifacts, join_key(pdf["prefix"], "vignette.json"), {
        **_base(pdf), "vignette": key, "width": width, "height": height, "bytes": (tmp / VIGNETTE).stat().st_size,
        "preview_jpeg_base64": base64.b64encode(buf.getvalue()).decode(), "seconds": round(time.perf_counter() - t, 3)})


def metadata_step(artifacts: Store, html: dict, pdf: dict, tmp: Path) -> dict:
    """The ISO 19139 record `OUVNAUT_<NOMCOURT>_<SERIE>.xml` of the ouvrage."""
    if done := _reused(artifacts, join_key(html["prefix"], "metadata.json")):
        return done
    work = download_zip(artifacts, html["html"], tmp / "work")
    meta = Metadata.from_dict(HtmlStage.load(work).metadata)
    name = metadata_filename(meta, html["ouvrage"])
    main = pdf["pdfs"][0]
    data = build_iso_metadata(meta, html["ouvrage"], pdf_name=main["pdf"], page_count=main["pages"],
                              thumbnail=VIGNETTE)
    key = join_key(html["prefix"], name)
    artifacts.write_bytes(key, data, "application/xml")
    return _save(artifacts, join_key(html["prefix"], "metadata.json"), {
        **_base(html), "metadata": key, "name": name, "bytes": len(data), "title": html["title"],
        "serie": meta.serie, "nom_long": meta.nom_long, "edition_date": meta.date_edition,
        "correction_date": meta.gan})


def publication_step(artifacts: Store, generated: Store, html: dict, pdf: dict, vignette: dict, metadata: dict,
                     *, run_id: str, tmp: Path) -> Published:
    """Publish the generated layout (PDFs, archive, thumbnail, metadata, log, report) with its manifest.

    Idempotent: when the published manifest already comes from the same source content and code
    version, nothing is written (sensor and schedule firing for one version give one publication)."""
    current = read_manifest(generated, html["ouvrage"])
    if current and current.get("content_hash") == html["content_hash"] and \
            current.get("code_version") == RENDER_CODE_VERSION:
        if current.get("source_version") != html["source_version"]:  # same bytes, re-uploaded: note it
            current = {**current, "source_version": html["source_version"]}
            generated.write_bytes(join_key(html["ouvrage"], MANIFEST),
                                  json.dumps(current, indent=1, ensure_ascii=False).encode(), "application/json")
        return Published(html["ouvrage"], {**current, "reused": True},
                         {name: generated.location(join_key(html["ouvrage"], name)) for name in current["files"]})
    files: dict[str, Path] = {}
    for p in pdf["pdfs"]:
        files[p["pdf"]] = tmp / p["pdf"]
        artifacts.download_file(p["key"], files[p["pdf"]])
    if len(pdf["pdfs"]) > 1:
        with zipfile.ZipFile(tmp / ARCHIVE, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for p in pdf["pdfs"]:
                z.write(files[p["pdf"]], arcname=p["pdf"])
        files[ARCHIVE] = tmp / ARCHIVE
    files[VIGNETTE] = tmp / VIGNETTE
    artifacts.download_file(vignette["vignette"], files[VIGNETTE])
    files[metadata["name"]] = tmp / metadata["name"]
    artifacts.download_file(metadata["metadata"], files[metadata["name"]])
    work = download_zip(artifacts, html["html"], tmp / "work")
    artifacts.download_file(pdf["log"], tmp / "pdf.log")
    log_text = (work / "html.log").read_text("utf-8") + (tmp / "pdf.log").read_text("utf-8")
    log_text += f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} Étape 3 sur {STEPS} : vignette et métadonnées ISO 19139\n"
    log_text += f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} Étape 4 sur {STEPS} : publication (run {run_id})\n"
    (tmp / LOG).write_text(log_text, "utf-8")
    files[LOG] = tmp / LOG
    warnings = [Warning_(**w) for w in html["warnings"] + pdf["warnings"]]
    write_report(tmp / REPORT, ouvrage=html["ouvrage"], documents=[{k: v for k, v in p.items() if k != "key"}
                                                                     for p in pdf["pdfs"]],
                 warnings=warnings, seconds={**html["seconds"], **pdf["seconds"]},
                 counts={**html["counts"], "pages": pdf["pages"]},
                 extra={"source_version": html["source_version"], "content_hash": html["content_hash"],
                        "run_id": run_id, "code_version": RENDER_CODE_VERSION})
    files[REPORT] = tmp / REPORT
    extra = {"title": metadata["title"], "serie": metadata["serie"], "nom_long": metadata["nom_long"],
             "edition_date": metadata["edition_date"], "correction_date": metadata["correction_date"],
             "pages": pdf["pdfs"][0]["pages"], "warnings": html["warning_count"] + len(pdf["warnings"]),
             "content_hash": html["content_hash"], "code_version": RENDER_CODE_VERSION}
    return publish(generated, html["ouvrage"], files, source_version=html["source_version"], run_id=run_id,
                   extra=extra)


def catalogue_step(generated: Store) -> dict:
    """Rewrite `catalogue.json` and `index.html` at the root of the generated store from the manifests."""
    manifests = [m for m in (read_manifest(generated, k) for k in published_keys(generated)) if m]
    data, html = build_catalogue(manifests)
    generated.write_bytes(CATALOGUE_JSON, data, "application/json")
    generated.write_bytes(CATALOGUE_HTML, html, "text/html; charset=utf-8")
    return {"ouvrages": [m["ouvrage"] for m in manifests], "json": generated.location(CATALOGUE_JSON),
            "html": generated.location(CATALOGUE_HTML)}


def preview_step(referentiel: Store, artifacts: Store, key: str, *, run_id: str, tmp: Path) -> dict:
    """Render ouvrage `key` of any referentiel into `previews/<key>/<run>/` of the artifact store; publishes nothing."""
    from pdfgen_pipeline.render.book import render_ouvrage

    snap = snapshot_ouvrage(referentiel, key, tmp / "snapshot")
    out = tmp / "out"
    report = render_ouvrage(snap.ouvrage_dir, out, commun_dir=snap.commun_dir, key=key)
    prefix = join_key("previews", key, run_id)
    locations = {}
    for name in [*report["files"]["pdfs"], VIGNETTE, LOG, REPORT, report["files"]["metadata"]]:
        artifacts.upload_file(join_key(prefix, name), out / name)
        locations[name] = artifacts.location(join_key(prefix, name))
    return {"ouvrage": key, "referentiel": referentiel.location(key), "pages": report["counts"]["pages"],
            "warnings": len(report["warnings"]), "locations": locations}


def tableau_step(table: Path, artifacts: Store, *, run_id: str, tmp: Path, title: str | None = None) -> dict:
    """A single table file → its own PDF in `tableaux/<run>/` of the artifact store."""
    from pdfgen_pipeline.render.tables import render_table_pdf

    out = tmp / f"{table.stem}.pdf"
    pages = render_table_pdf(table, out, title=title)
    key = join_key("tableaux", run_id, out.name)
    artifacts.upload_file(key, out, "application/pdf")
    return {"table": table.name, "pages": pages, "pdf": artifacts.location(key), "bytes": out.stat().st_size}

