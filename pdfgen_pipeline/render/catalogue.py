"""The catalogue of published ouvrages: `catalogue.json` and `index.html` at the generated store's root.

It replaces the former listing endpoint: one entry per manifest (title, series, edition and
correction dates, pages, links to the PDF, thumbnail, metadata and log), sorted by name and,
in a second table, by date of the last correction (else of the edition), newest first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from pdfgen_pipeline.render.html import format_date_fr

CATALOGUE_JSON = "catalogue.json"
CATALOGUE_HTML = "index.html"


def format_datetime_fr(value: str) -> str:
    """`2026-12-03T19:16:42+00:00` → `3 décembre 2026 à 20:16` (Paris time); other values unchanged."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo("Europe/Paris"))
    return f"{format_date_fr(moment.date().isoformat())} à {moment:%H:%M}"


def catalogue_entries(manifests: list[dict]) -> list[dict]:
    """One catalogue entry per published manifest, sorted by ouvrage key."""
    entries = []
    for m in manifests:
        key = m["ouvrage"]
        files = m.get("files", {})

        def link(name: str, key: str = key, files: dict = files) -> str | None:
            return f"{key}/{name}" if name in files else None

        meta_name = next((n for n in files if n.startswith("OUVNAUT_") and n.endswith(".xml")), None)
        entries.append({
            "key": key,
            "title": m.get("title") or key,
            "serie": m.get("serie", ""),
            "nom_long": m.get("nom_long", ""),
            "edition_date": m.get("edition_date", ""),
            "correction_date": m.get("correction_date", ""),
            "pages": m.get("pages"),
            "published_at": m.get("published_at", ""),
            "source_version": m.get("source_version", ""),
            "warnings": m.get("warnings", 0),
            "pdf": link("document.pdf"),
            "pdfs": [f"{key}/{n}" for n in sorted(files, key=lambda n: (n != "document.pdf", n)) if n.endswith(".pdf")],
            "vignette": link("vignette.jpg"),
            "metadata": link(meta_name) if meta_name else None,
            "log": link("stderr.log"),
            "archive": link("archive.zip"),
        })
    return sorted(entries, key=lambda e: e["key"])


def build_catalogue(manifests: list[dict], *, generated_at: datetime | None = None) -> tuple[bytes, bytes]:
    """(catalogue.json, index.html) for the given manifests."""
    entries = catalogue_entries(manifests)
    now = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    data = json.dumps({"generated_at": now, "count": len(entries), "ouvrages": entries}, ensure_ascii=False,
                      indent=1).encode("utf-8")
    env = Environment(loader=PackageLoader("pdfgen_pipeline.render", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["frdate"] = format_date_fr
    env.filters["frdatetime"] = format_datetime_fr
    by_date = sorted(entries, key=lambda e: (e["correction_date"] or e["edition_date"] or ""), reverse=True)
    html = env.get_template("catalogue.html.j2").render(entries=entries, by_date=by_date, generated_at=now)
    return data, html.encode("utf-8")
