"""Jobs: the partitioned publication chain, the catalogue refresh, discovery, preview and table rendering."""


import tempfile
from pathlib import Path

import dagster as dg

from pdfgen_pipeline import steps
from pdfgen_pipeline.defs.assets import GROUP, POOL, S3_RETRY, catalogue
from pdfgen_pipeline.defs.failures import fail_fast_on_permanent_errors
from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import StoresResource
from pdfgen_pipeline.ouvrage.keys import validate_ouvrage_key
from pdfgen_pipeline.referentiel import scan_referentiel
from pdfgen_pipeline.stores.factory import open_store

publish_ouvrage = dg.define_asset_job(
    "publish_ouvrage", selection=dg.AssetSelection.groups(GROUP),
    description="Source → HTML → PDF → thumbnail, ISO metadata → publication, for one ouvrage (partition).")

refresh_catalogue = dg.define_asset_job(
    "refresh_catalogue", selection=dg.AssetSelection.assets(catalogue),
    description="Rewrite index.html and catalogue.json of the generated store.")


@dg.op(retry_policy=S3_RETRY)
def register_ouvrages(context: dg.OpExecutionContext, stores: StoresResource) -> list[str]:
    """Register a partition for every ouvrage of the production referentiel."""
    with fail_fast_on_permanent_errors():
        scan = scan_referentiel(stores.referentiel())
    existing = set(context.instance.get_dynamic_partitions(OUVRAGES))
    new = [k for k in scan.ouvrages if k not in existing]
    if new:
        context.instance.add_dynamic_partitions(OUVRAGES, new)
    context.log.info(f"{len(scan.ouvrages)} ouvrages in {stores.referentiel().url}; {len(new)} new: {new}")
    if scan.ignored:
        context.log.info(f"not ouvrages (no xml/document.xml or unsafe name): {scan.ignored}")
    context.add_output_metadata({"ouvrages": len(scan.ouvrages), "new": dg.MetadataValue.json(new),
                                 "objects_listed": scan.objects})
    return list(scan.ouvrages)


@dg.job(description="Register every ouvrage of the production referentiel as a partition (works without the daemon).")
def discover_ouvrages():
    register_ouvrages()


class PreviewConfig(dg.Config):
    """Which ouvrage to preview, from which referentiel."""

    ouvrage: str
    referentiel: str = "production"  # production | preparation | a store URL or path (uploaded folder)


@dg.op(retry_policy=S3_RETRY, pool=POOL)
def render_preview(context: dg.OpExecutionContext, config: PreviewConfig, stores: StoresResource) -> dict:
    """Render one ouvrage into the artifact store's `previews/`; publishes nothing."""
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-preview-") as tmp:
        key = validate_ouvrage_key(config.ouvrage)
        result = steps.preview_step(stores.named(config.referentiel), stores.artifacts(), key,
                                    run_id=context.run.run_id, tmp=Path(tmp))
    pdf = result["locations"].get("document.pdf")
    context.log.info(f"preview of {key} from {result['referentiel']}: {pdf} ({result['pages']} pages)")
    context.add_output_metadata({"pdf": dg.MetadataValue.path(pdf), "pages": result["pages"],
                                 "warnings": result["warnings"],
                                 "locations": dg.MetadataValue.json(result["locations"])})
    return result


@dg.job(description="Render an ouvrage from production, preparation or any folder/URL, and say where the PDF is.")
def preview_ouvrage():
    render_preview()


class TableauConfig(dg.Config):
    """A table file (flat spreadsheet XML): a local path or an s3:// URL."""

    table: str
    title: str | None = None


@dg.op(retry_policy=S3_RETRY, pool=POOL)
def render_table(context: dg.OpExecutionContext, config: TableauConfig, stores: StoresResource) -> dict:
    """Turn one table file into its own PDF in the artifact store's `tableaux/`."""
    parent, _, name = config.table.rstrip("/").rpartition("/")
    with fail_fast_on_permanent_errors(), tempfile.TemporaryDirectory(prefix="pdfgen-tableau-") as tmp:
        local = Path(tmp) / (name or "tableau.xml")
        if config.table.startswith("s3://"):
            stores.open(parent).download_file(name, local)
        else:
            open_store(parent or ".").download_file(name, local)
        result = steps.tableau_step(local, stores.artifacts(), run_id=context.run.run_id, tmp=Path(tmp),
                                    title=config.title)
    context.log.info(f"{config.table} → {result['pdf']} ({result['pages']} pages)")
    context.add_output_metadata({"pdf": dg.MetadataValue.path(result["pdf"]), "pages": result["pages"],
                                 "bytes": result["bytes"]})
    return result


@dg.job(description="Turn a table file (flat spreadsheet XML) into its own PDF.")
def render_tableau():
    render_table()
