"""The catalogue built from publication manifests: every field a consumer needs, by name and by date."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from lxml import html as lxml_html

from pdfgen_pipeline.render.catalogue import build_catalogue

MANIFESTS = [
    {"ouvrage": "g9", "title": "Golfe de Gascogne", "serie": "g9", "nom_long": "Instructions nautiques",
     "edition_date": "2024-03-01", "correction_date": "2026-11-20", "pages": 40,
     "published_at": "2026-12-03T19:16:42+00:00", "source_version": "v-g9",
     "files": {"document.pdf": {}, "annexe.pdf": {}, "archive.zip": {}, "vignette.jpg": {},
               "OUVNAUT_IN_G9.xml": {}, "stderr.log": {}}},
    {"ouvrage": "c99", "title": "De la pointe A à la pointe B", "serie": "c99", "nom_long": "Instructions nautiques",
     "edition_date": "2025-06-15", "correction_date": "2026-12-01", "pages": 12,
     "published_at": "2026-12-02T08:00:00+00:00", "source_version": "v-c99",
     "files": {"document.pdf": {}, "vignette.jpg": {}, "OUVNAUT_IN_C99.xml": {}, "stderr.log": {}}},
    {"ouvrage": "lf1", "title": "", "files": {"document.pdf": {}}},  # a manifest without metadata
]


def test_catalogue_json_lists_every_field_and_link() -> None:
    data, _html = build_catalogue(MANIFESTS, generated_at=datetime(2026, 12, 4, 6, 0, tzinfo=UTC))
    catalogue = json.loads(data)
    assert catalogue["count"] == 3 and catalogue["generated_at"] == "2026-12-04T06:00:00+00:00"
    by_key = {e["key"]: e for e in catalogue["ouvrages"]}
    assert [e["key"] for e in catalogue["ouvrages"]] == ["c99", "g9", "lf1"]  # by name
    g9 = by_key["g9"]
    assert (g9["title"], g9["serie"], g9["edition_date"], g9["correction_date"], g9["pages"]) == (
        "Golfe de Gascogne", "g9", "2024-03-01", "2026-11-20", 40)
    assert g9["pdf"] == "g9/document.pdf" and g9["pdfs"] == ["g9/document.pdf", "g9/annexe.pdf"]
    assert (g9["vignette"], g9["metadata"], g9["log"], g9["archive"]) == (
        "g9/vignette.jpg", "g9/OUVNAUT_IN_G9.xml", "g9/stderr.log", "g9/archive.zip")
    lf1 = by_key["lf1"]
    assert lf1["title"] == "lf1" and lf1["vignette"] is None and lf1["metadata"] is None and lf1["archive"] is None


def test_index_html_shows_cards_by_name_and_a_table_by_correction_date() -> None:
    _data, html = build_catalogue(MANIFESTS)
    page = lxml_html.fromstring(html)
    cards = page.xpath('//section[@id="par-nom"]/article')
    assert [c.get("data-ouvrage") for c in cards] == ["c99", "g9", "lf1"]
    g9 = cards[1].text_content()
    assert "Golfe de Gascogne" in g9 and "40 pages" in g9
    assert "1er mars 2024" in g9 and "20 novembre 2026" in g9
    assert cards[1].xpath('.//img/@src') == ["g9/vignette.jpg"]
    assert set(cards[1].xpath(".//a/@href")) >= {"g9/document.pdf", "g9/annexe.pdf", "g9/archive.zip",
                                                 "g9/OUVNAUT_IN_G9.xml", "g9/stderr.log"}
    rows = page.xpath('//table[@id="par-date"]/tbody/tr')
    assert [r.xpath("string(td[1])") for r in rows] == ["c99", "g9", "lf1"]  # newest correction first
    assert [r.xpath("string(td[3])") for r in rows] == ["C99", "G9", "—"]
    assert rows[2].xpath("string(td[4])") == "—"  # no edition date: a dash
