"""The Dagster code location: the one place Dagster sees, assembled from `defs/`."""

import dagster as dg

from pdfgen_pipeline.defs.assets import catalogue, ouvrage_assets
from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager
from pdfgen_pipeline.defs.jobs import (
    discover_ouvrages,
    preview_ouvrage,
    publish_ouvrage,
    refresh_catalogue,
    render_tableau,
)
from pdfgen_pipeline.defs.resources import stores_from_env
from pdfgen_pipeline.defs.schedules import nightly_reconciliation
from pdfgen_pipeline.defs.sensors import catalogue_after_publication, referentiel_production_sensor

stores = stores_from_env()

defs = dg.Definitions(
    assets=[*ouvrage_assets, catalogue],
    jobs=[publish_ouvrage, refresh_catalogue, discover_ouvrages, preview_ouvrage, render_tableau],
    sensors=[referentiel_production_sensor, catalogue_after_publication],
    schedules=[nightly_reconciliation],
    resources={"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)},
    # One ouvrage's steps run one after the other in the run's process: no per-step process start-up
    # (about 4 s each); isolation comes from one run per ouvrage (one pod per run on Kubernetes).
    executor=dg.in_process_executor,
)
