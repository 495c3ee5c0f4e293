"""The nightly reconciliation that replaces the former 00:05 task."""


import dagster as dg

from pdfgen_pipeline.defs.jobs import publish_ouvrage
from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import StoresResource
from pdfgen_pipeline.defs.sensors import SOURCE_VERSION_TAG
from pdfgen_pipeline.referentiel import scan_referentiel


def stale_ouvrages(stores: StoresResource) -> tuple[list[str], dict[str, str]]:
    """(every ouvrage of the production referentiel, the stale ones): stale means `xml/document.xml` newer than
    the published `document.pdf`, or no PDF yet (the former task's rule), as ouvrage key → source version.
    One listing of each store."""
    scan = scan_referentiel(stores.referentiel())
    pdf_dates = {o.key.split("/", 1)[0]: o.last_modified for o in stores.generated().list("")
                 if o.key.count("/") == 1 and o.key.endswith("/document.pdf")}
    stale = {}
    for key, listing in scan.ouvrages.items():
        doc = listing.document
        pdf = pdf_dates.get(key)
        if doc is not None and (pdf is None or doc.last_modified > pdf):
            stale[key] = listing.version
    return sorted(scan.ouvrages), stale


@dg.schedule(job=publish_ouvrage, cron_schedule="5 0 * * *", execution_timezone="Europe/Paris",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Every night at 00:05: regenerate every ouvrage whose XML is newer than its PDF.")
def nightly_reconciliation(context: dg.ScheduleEvaluationContext, stores: StoresResource):
    ouvrages, stale = stale_ouvrages(stores)
    existing = set(context.instance.get_dynamic_partitions(OUVRAGES))
    missing = [k for k in ouvrages if k not in existing]
    if missing:
        context.instance.add_dynamic_partitions(OUVRAGES, missing)
    if not stale:
        return dg.SkipReason("every published PDF is newer than its XML")
    date = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "now"
    return [dg.RunRequest(partition_key=k, run_key=f"nightly:{date}:{k}:{v}", tags={SOURCE_VERSION_TAG: v})
            for k, v in sorted(stale.items())]
