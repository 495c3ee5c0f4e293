"""The ouvrage assets, one partition per ouvrage: source → HTML → PDF → thumbnail, metadata → publication,
and the unpartitioned catalogue of what is published."""


import tempfile
import time
from pathlib import Path

import dagster as dg

from pdfgen_pipeline import steps
from pdfgen_pipeline.defs.failures import fail_fast_on_permanent_errors
from pdfgen_pipeline.defs.partitions import ouvrages_partitions
from pdfgen_pipeline.defs.resources import StoresResource

GROUP = "ouvrages"
POOL = "pdf_render"
#: Network I/O (S3) is retried with exponential backoff and jitter.
S3_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
CODE = steps.RENDER_CODE_VERSION
COMMON = {"partitions_def": ouvrages_partitions, "group_name": GROUP, "io_manager_key": "artifact_pointers",
          "code_version": CODE}


def _warnings_md(warnings: list[dict], limit: int = 50) -> dg.MetadataValue:
    lines = [f"- `{w['code']}` {w['message']}" + (f" (ligne {w['line']})" if w.get("line") else "")
             for w in warnings[:limit]]
    if len(warnings) > limit:
        lines.append(f"- … {len(warnings) - limit} de plus")
    return dg.MetadataValue.md("\n".join(lines) or "aucun")


@dg.asset(**COMMON, retry_policy=S3_RETRY, kinds={"s3", "xml"},
          description="Snapshot of the ouvrage and the commun/ files it uses, from the production referentiel.")
def ouvrage_source(context: dg.AssetExecutionContext, stores: StoresResource) -> dg.Output[dict]:
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-source-") as tmp:
        ptr = steps.source_step(stores.referentiel(), stores.artifacts(), context.partition_key, Path(tmp))
    return dg.Output(ptr, data_version=dg.DataVersion(ptr["content_hash"]), metadata={
        "referentiel": ptr["referentiel"], "files": ptr["files"], "bytes": ptr["bytes"],
        "commun_files": dg.MetadataValue.json(ptr["commun"]), "source_version": ptr["source_version"],
        "content_hash": ptr["content_hash"], "artifact": stores.artifacts().location(ptr["source"]),
        "seconds": ptr["seconds"], "reused": ptr.get("reused", False)})


@dg.asset(**COMMON, pool=POOL, retry_policy=S3_RETRY, kinds={"html"},
          check_specs=[dg.AssetCheckSpec("illustrations_present", asset="ouvrage_html",
                                         description="Every illustration and table has its file.")],
          description="Intermediate HTML book (Jinja2 + print CSS) with converted illustrations and tables.")
def ouvrage_html(context: dg.AssetExecutionContext, stores: StoresResource, ouvrage_source: dict):
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-html-") as tmp:
        ptr = steps.html_step(stores.artifacts(), ouvrage_source, Path(tmp))
    for w in ptr["warnings"][:20]:
        context.log.warning(f"[{w['code']}] {w['message']}")
    missing = [w for w in ptr["warnings"] if w["code"] in ("missing-image", "missing-table", "image-conversion",
                                                           "table-error")]
    yield dg.Output(ptr, metadata={
        "title": ptr["title"], "documents": len(ptr["documents"]), "counts": dg.MetadataValue.json(ptr["counts"]),
        "warnings_count": ptr["warning_count"], "warnings": _warnings_md(ptr["warnings"]),
        "seconds": dg.MetadataValue.json(ptr["seconds"]), "reused": ptr.get("reused", False),
        "artifact": stores.artifacts().location(ptr["html"])})
    yield dg.AssetCheckResult(
        check_name="illustrations_present", passed=not missing, severity=dg.AssetCheckSeverity.WARN,
        metadata={"missing": len(missing), "details": _warnings_md(missing, 30)})


@dg.asset(**COMMON, pool=POOL, retry_policy=S3_RETRY, kinds={"pdf", "weasyprint"},
          check_specs=[
              dg.AssetCheckSpec("pdf_readable", asset="ouvrage_pdf", blocking=True,
                                description="Each PDF opens, has pages and selectable text "
                                            "(nothing is published otherwise)."),
              dg.AssetCheckSpec("toc_and_index_consistent", asset="ouvrage_pdf",
                                description="Every TOC entry and index reference found its page; "
                                            "one bookmark per title."),
          ],
          description="The printed book(s), laid out by WeasyPrint.")
def ouvrage_pdf(context: dg.AssetExecutionContext, stores: StoresResource, ouvrage_html: dict):
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-pdf-") as tmp:
        ptr = steps.pdf_step(stores.artifacts(), ouvrage_html, Path(tmp))
    problems = [p for d in ptr["pdfs"] for p in d["health"]["problems"]]
    yield dg.Output(ptr, metadata={
        "pages": ptr["pages"], "dagster/row_count": ptr["pages"],
        "bytes": sum(d["bytes"] for d in ptr["pdfs"]),
        "pdfs": dg.MetadataValue.json([{k: d[k] for k in ("pdf", "pages", "bytes")} for d in ptr["pdfs"]]),
        "warnings_count": len(ptr["warnings"]), "warnings": _warnings_md(ptr["warnings"]),
        "seconds": dg.MetadataValue.json(ptr["seconds"]), "reused": ptr.get("reused", False),
        "artifact": stores.artifacts().location(ptr["pdfs"][0]["key"])})
    yield dg.AssetCheckResult(check_name="pdf_readable", passed=not problems,
                              metadata={"problems": dg.MetadataValue.json(problems),
                                        "pages_with_text": sum(d["health"]["pages_with_text"] for d in ptr["pdfs"])})
    titles = ouvrage_html["counts"].get("titles", 0)
    unresolved = sum(d["toc_unresolved"] + d["index_unresolved"] for d in ptr["pdfs"])
    title_marks = sum(d["bookmarks"] for d in ptr["pdfs"])
    yield dg.AssetCheckResult(
        check_name="toc_and_index_consistent", passed=unresolved == 0 and title_marks >= titles,
        metadata={"unresolved_references": unresolved, "bookmarks": title_marks, "titles": titles})


@dg.asset(**COMMON, retry_policy=S3_RETRY, kinds={"jpeg"}, description="Thumbnail of page 1, JPEG at 150 dpi.")
def ouvrage_vignette(context: dg.AssetExecutionContext, stores: StoresResource, ouvrage_pdf: dict) -> dg.Output[dict]:
    t = time.perf_counter()
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-vignette-") as tmp:
        ptr = steps.vignette_step(stores.artifacts(), ouvrage_pdf, Path(tmp))
    preview = ptr["preview_jpeg_base64"]
    return dg.Output(ptr, metadata={
        "preview": dg.MetadataValue.md(f"![vignette](data:image/jpeg;base64,{preview})"),
        "size": f"{ptr['width']}×{ptr['height']}", "bytes": ptr["bytes"],
        "seconds": round(time.perf_counter() - t, 3),
        "artifact": stores.artifacts().location(ptr["vignette"])})


@dg.asset(**COMMON, retry_policy=S3_RETRY, kinds={"xml"},
          description="ISO 19115/19139 metadata record OUVNAUT_<NOMCOURT>_<SERIE>.xml.")
def ouvrage_metadata(context: dg.AssetExecutionContext, stores: StoresResource, ouvrage_html: dict,
                     ouvrage_pdf: dict) -> dg.Output[dict]:
    t = time.perf_counter()
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-metadata-") as tmp:
        ptr = steps.metadata_step(stores.artifacts(), ouvrage_html, ouvrage_pdf, Path(tmp))
    return dg.Output(ptr, metadata={"file": ptr["name"], "bytes": ptr["bytes"],
                                    "seconds": round(time.perf_counter() - t, 3),
                                    "artifact": stores.artifacts().location(ptr["metadata"])})


@dg.asset(**COMMON, retry_policy=S3_RETRY, kinds={"s3"},
          description="The generated layout published for consumers, with manifest.json written last.")
def ouvrage_publication(context: dg.AssetExecutionContext, stores: StoresResource, ouvrage_html: dict,
                        ouvrage_pdf: dict, ouvrage_vignette: dict, ouvrage_metadata: dict) -> dg.Output[dict]:
    t = time.perf_counter()
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-publish-") as tmp:
        published = steps.publication_step(stores.artifacts(), stores.generated(), ouvrage_html, ouvrage_pdf,
                                           ouvrage_vignette, ouvrage_metadata, run_id=context.run.run_id,
                                           tmp=Path(tmp))
    m = published.manifest
    return dg.Output({"ouvrage": published.key, "manifest": m, "locations": published.locations}, metadata={
        "pages": m["pages"], "warnings": m["warnings"], "source_version": m["source_version"],
        "reused": m.get("reused", False), "seconds": round(time.perf_counter() - t, 3),
        "files": dg.MetadataValue.json({k: v["size"] for k, v in m["files"].items()}),
        **{f"location/{name}": dg.MetadataValue.path(url) for name, url in published.locations.items()}})


@dg.asset(group_name="catalogue", deps=[ouvrage_publication], retry_policy=S3_RETRY, kinds={"html", "json"},
          description="index.html and catalogue.json at the root of the generated store: every published ouvrage.")
def catalogue(context: dg.AssetExecutionContext, stores: StoresResource) -> dg.MaterializeResult:
    with fail_fast_on_permanent_errors():
        result = steps.catalogue_step(stores.generated())
    return dg.MaterializeResult(metadata={
        "ouvrages": len(result["ouvrages"]), "keys": dg.MetadataValue.json(result["ouvrages"]),
        "index_html": dg.MetadataValue.path(result["html"]), "catalogue_json": dg.MetadataValue.path(result["json"])})


ouvrage_assets = [ouvrage_source, ouvrage_html, ouvrage_pdf, ouvrage_vignette, ouvrage_metadata, ouvrage_publication]
