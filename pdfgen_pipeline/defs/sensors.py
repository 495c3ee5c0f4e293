"""Sensors: production referentiel changes → runs; successful publications → catalogue refresh."""


import json

import dagster as dg

from pdfgen_pipeline.defs.jobs import publish_ouvrage, refresh_catalogue
from pdfgen_pipeline.defs.partitions import OUVRAGES, ouvrages_partitions
from pdfgen_pipeline.defs.resources import StoresResource
from pdfgen_pipeline.referentiel import scan_referentiel
from pdfgen_pipeline.stores.publication import read_manifest

SOURCE_VERSION_TAG = "pdfgen/source_version"


def run_key(ouvrage: str, version: str) -> str:
    """One run per (ouvrage, source version): Dagster never launches the same key twice."""
    return f"{ouvrage}:{version}"


@dg.sensor(job=publish_ouvrage, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Lists the production referentiel; registers new ouvrages and requests one run per "
                       "ouvrage whose source changed.")
def referentiel_production_sensor(context: dg.SensorEvaluationContext, stores: StoresResource) -> dg.SensorResult:
    scan = scan_referentiel(stores.referentiel())
    versions = scan.versions()
    if context.cursor:
        try:
            previous = json.loads(context.cursor)
        except ValueError:
            previous = None
    else:
        previous = None
    if previous is None:  # first tick, or a lost/corrupt cursor: compare with what is published
        generated = stores.generated()
        previous = {}
        for key in versions:
            manifest = read_manifest(generated, key)
            if manifest:
                previous[key] = manifest.get("source_version")
    existing = set(context.instance.get_dynamic_partitions(OUVRAGES))
    new_partitions = [k for k in versions if k not in existing]
    requests = [dg.RunRequest(partition_key=k, run_key=run_key(k, v), tags={SOURCE_VERSION_TAG: v})
                for k, v in versions.items() if previous.get(k) != v]
    deleted = sorted(set(previous) - set(versions))
    for k in deleted:
        context.log.warning(f"ouvrage {k} is no longer in the production referentiel: its published files are kept")
    context.log.info(f"{scan.objects} objects, {len(versions)} ouvrages, {len(requests)} to generate, "
                     f"{len(new_partitions)} new partitions")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[ouvrages_partitions.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(versions, sort_keys=True, separators=(",", ":")))


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[publish_ouvrage],
                      request_job=refresh_catalogue, default_status=dg.DefaultSensorStatus.STOPPED,
                      description="Rewrites the catalogue after every successful publication.")
def catalogue_after_publication(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"catalogue:{context.dagster_run.run_id}")
