"""End-to-end rendering of the sample ouvrages, checked by reading the PDFs back."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from html import unescape

import pikepdf
from lxml import etree
from owslib.iso import MD_Metadata
from PIL import Image

from pdfgen_pipeline.render.book import render_ouvrage
from pdfgen_pipeline_tests.pdfcheck import (
    bookmarks,
    index_problems,
    links,
    misplaced_bookmarks,
    page_texts,
    text_in_rect,
    toc_problems,
    word_coverage,
)


def _front_pages(report: dict, name: str = "document") -> int:
    return next(d for d in report["documents"] if d["name"] == name)["front_pages"]


def test_outputs_are_written(rendered):
    out, _ = rendered["c99"]
    for name in ("document.html", "document.pdf", "vignette.jpg", "OUVNAUT_IN_C99.xml", "stderr.log", "report.json"):
        assert (out / name).is_file(), name
    assert (out / "assets" / "book.css").is_file()
    assert not (out / "archive.zip").exists()  # one document only
    log = (out / "stderr.log").read_text("utf-8")
    assert "Étape 1 sur 5" in log and "Étape 5 sur 5" in log


def test_text_of_the_xml_is_in_the_pdf(rendered, referentiel):
    for key in ("c99", "lf1"):
        out, _ = rendered[key]
        coverage, missing = word_coverage(referentiel / key / "xml" / "document.xml", out / "document.pdf")
        assert coverage >= 0.999, (key, missing.most_common(10))


def test_utf16_document_renders(rendered, referentiel):
    raw = (referentiel / "g9" / "xml" / "document.xml").read_bytes()
    assert raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    out, _ = rendered["g9"]
    coverage, missing = word_coverage(referentiel / "g9" / "xml" / "document.xml", out / "document.pdf")
    assert coverage >= 0.999, missing.most_common(10)


def test_toc_page_numbers_are_the_pages_where_titles_are_printed(rendered):
    out, report = rendered["c99"]
    checked, problems = toc_problems(out / "document.pdf", _front_pages(report))
    assert checked >= report["documents"][0]["counts"]["titles_by_level"]["chapitre"] + 40
    assert problems == []


def test_index_page_numbers_designate_pages_with_the_term(rendered):
    out, report = rendered["c99"]
    doc = report["documents"][0]
    index_pages = list(range(doc["front_pages"] + doc["body_pages"], doc["pages"]))
    texts = page_texts(out / "document.pdf")
    assert index_pages and all("Index" in texts[i] for i in index_pages)
    html = (out / "document.html").read_text("utf-8")
    terms = [unescape(t) for t in re.findall(r'<span class="terme">([^<]+)</span>', html)]
    assert len(terms) == doc["counts"]["index_terms"] >= 20
    checked, problems = index_problems(out / "document.pdf", index_pages, terms)
    assert checked >= len(terms)
    assert problems == []


def test_bookmarks_follow_the_titles(rendered):
    out, report = rendered["c99"]
    marks = bookmarks(out / "document.pdf")
    counts = report["documents"][0]["counts"]
    titles = [m for m in marks if m[1] not in ("Table des matières", "Index")]
    assert len(titles) == counts["titles"] == sum(counts["titles_by_level"].values())
    assert {m[1] for m in marks} >= {"Table des matières", "Index"}
    # levels nest like the book: chapitre 1 … ssPara 5
    assert max(m[0] for m in marks) == 5
    assert any(m[1].startswith("1. Renseignements généraux") for m in marks if m[0] == 1)
    assert misplaced_bookmarks(out / "document.pdf") == []  # each opens the page that prints its title


def test_links_web_mail_and_internal(rendered):
    """Every link of the body (not the notice page's) is a PDF link: web and mail to their address, internal
    ones to the page where the designated title or figure is printed."""
    out, report = rendered["c99"]
    doc = next(d for d in report["documents"] if d["name"] == "document")
    body = range(doc["front_pages"], doc["front_pages"] + doc["body_pages"])
    html = (out / "document.html").read_text("utf-8")
    body_html = html[html.index('<div class="part body">'):html.index('<div class="part back">')]
    anchors = re.findall(r'<a class="(lien-[^"]*)" href="([^"]*)">([^<]*)</a>', body_html)
    external = {unescape(href) for cls, href, _ in anchors if cls in ("lien-web", "lien-mail")}
    internal = [unescape(text) for cls, _, text in anchors if cls.startswith("lien-interne")]
    assert any(h.startswith("mailto:") for h in external) and any(h.startswith("https://") for h in external)
    assert len(internal) >= 3

    lks = [lk for lk in links(out / "document.pdf") if lk.page in body]
    assert external <= {lk.uri for lk in lks if lk.uri}
    texts = page_texts(out / "document.pdf")
    found = {}
    for lk in lks:
        if lk.dest_page is not None:
            label = text_in_rect(out / "document.pdf", lk.page, lk.rect)  # may catch a neighbouring character
            found.update((numero, lk.dest_page) for numero in internal if numero in label)
    assert sorted(found) == sorted(internal)
    for numero, page in found.items():
        assert numero in texts[page], f"link to {numero} goes to page index {page}, which does not print it"


def test_pdf_metadata(rendered):
    out, _ = rendered["c99"]
    with pikepdf.open(out / "document.pdf") as pdf:
        info = pdf.docinfo
        assert str(info["/Title"]).startswith("Instructions nautiques C99 — De la pointe Saint-Mathieu")
        assert "Service hydrographique" in str(info["/Author"])
        assert "Instructions nautiques" in str(info["/Subject"])
        assert "C99" in str(info["/Keywords"])
        assert str(info["/CreationDate"]).startswith("D:2021")
        assert str(pdf.Root.Lang) == "fr"
        labels = pdf.Root.PageLabels.Nums
        assert labels[1].S == "/r" and labels[3].S == "/D"


def test_alinea_numbers_in_the_outer_margin(rendered):
    import pdfplumber

    out, report = rendered["c99"]
    front = _front_pages(report)
    with pdfplumber.open(out / "document.pdf") as pdf:
        sides = {}
        for i in range(front + 1, front + 9):  # body page 1 holds only the plan of the book
            page = pdf.pages[i]
            words = page.extract_words(extra_attrs=["size"])
            body = [w for w in words if 9 < w["size"] < 10 and 60 < w["top"] < page.height - 60]  # 9.5pt text
            if not body:  # the blank verso before a chapter opening on a recto
                continue
            left_edge = min(w["x0"] for w in body)
            right_edge = max(w["x1"] for w in body)
            nmr = [w for w in words if re.fullmatch(r"\d\d", w["text"]) and 6.5 < w["size"] < 7.5
                   and (w["x1"] < left_edge + 1 or w["x0"] > right_edge - 1)]
            assert nmr, i
            printed_number = i - front + 1
            if printed_number % 2:  # recto: right margin
                assert all(w["x0"] > right_edge - 1 for w in nmr), i
            else:
                assert all(w["x1"] < left_edge + 1 for w in nmr), i
            sides[printed_number % 2] = sides.get(printed_number % 2, 0) + 1
        assert sides.get(0, 0) >= 2 and sides.get(1, 0) >= 2


def test_corrections_show_bar_and_date(rendered):
    out, _ = rendered["c99"]
    html = (out / "document.html").read_text("utf-8")
    assert 'class="alinea modifie' in html
    text = " ".join(page_texts(out / "document.pdf"))
    dates = set(re.findall(r'<span class="corr-date[^"]*">([^<]+)</span>', html))
    assert dates and all(d in text for d in dates)


def _flat(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def test_cover_and_notice_show_the_metadata(rendered, referentiel):
    from pdfgen_pipeline.ouvrage.loader import load_ouvrage

    out, _ = rendered["c99"]
    meta = load_ouvrage(referentiel / "c99").documents[0].metadata
    texts = [_flat(t) for t in page_texts(out / "document.pdf")]
    cover = texts[0]
    for shown in (meta.nom_long.upper(), meta.serie.upper(), meta.titre, meta.pays, "10 mars 2021",
                  "17 janvier 2024", meta.nota[:60]):
        assert _flat(shown) in cover, shown
    notice = next(t for t in texts[1:4] if "Tous droits réservés" in t or meta.copyright.texte[:40] in t)
    assert _flat(meta.copyright.texte[:80]) in notice
    assert meta.editeur.identite.organisation in notice and "Brest" in notice


def test_running_head_marker_credit_and_table_text(rendered):
    import pdfplumber

    out, report = rendered["c99"]
    front = _front_pages(report)
    texts = [_flat(t) for t in page_texts(out / "document.pdf")]
    html = (out / "document.html").read_text("utf-8")
    with pdfplumber.open(out / "document.pdf") as pdf:
        # running head: the ouvrage and the current chapter, above the text of every page of a chapter
        chapters = [_flat(unescape(c)) for c in re.findall(r'<h1 id="[^"]*" data-label="([^"]+)" class="titre"', html)]
        assert len(chapters) == 4, chapters
        heads = []
        for i in range(front, len(pdf.pages) - 1):
            words = pdf.pages[i].extract_words(extra_attrs=["size"])
            top = " ".join(w["text"] for w in words if w["top"] < 60 and w["size"] < 8)  # 7.5pt, above the text
            if top:
                heads.append(top)
                assert "Instructions nautiques C99" in top, (i, top)
        assert {c for c in chapters if any(c in h for h in heads)} == set(chapters)
        # the correction bar: a vertical rule drawn beside the text of a corrected alinea
        corrected = next(i for i in range(front, len(pdf.pages)) if "2023-11-22" in texts[i])
        page = pdf.pages[corrected]
        words = page.extract_words(extra_attrs=["size"])
        text = [w for w in words if 9 < w["size"] < 10]
        left = min(w["x0"] for w in text)
        date = next(w for w in words if w["text"] == "2023-11-22")
        # WeasyPrint fills a border as the area between two rectangles: the outer one starts in the margin
        rules = [e for e in (*page.rects, *page.lines) if e["bottom"] - e["top"] > 20
                 and max(e.get("non_stroking_color") or (1,)) < 0.3  # a dark fill
                 and e["x0"] < left - 1  # starts left of the text column: not a table border
                 and e["top"] - 20 < date["top"] < e["bottom"] + 20]  # beside the dated alinea
        assert rules, f"no correction bar beside the date on page index {corrected}"
    body = " ".join(texts[front:])
    assert "⚠" in body  # attention marker before the text it flags
    credits = [_flat(unescape(c)) for c in re.findall(r'<p class="credit">([^<]+)</p>', html)]
    assert credits and all(c in body for c in credits), credits
    for cell in ("FR571490", "Ouessant — Île Vierge", "1/25 000", "Cartes électroniques (ENC)"):
        assert cell in body, cell


def test_vignette_is_a_150_dpi_jpeg_of_page_one(rendered):
    out, _ = rendered["c99"]
    with Image.open(out / "vignette.jpg") as im:
        assert im.format == "JPEG"
        assert tuple(round(v) for v in im.info["dpi"]) == (150, 150)
        assert abs(im.width - 210 / 25.4 * 150) <= 2 and abs(im.height - 297 / 25.4 * 150) <= 2
        # page 1 is the cover: mostly white with dark title text
        grey = im.convert("L")
        assert grey.getextrema()[0] < 60 and sum(grey.histogram()[240:]) > 0.7 * im.width * im.height


def test_iso_metadata_round_trips_through_owslib(rendered):
    out, _ = rendered["c99"]
    md = MD_Metadata(etree.parse(str(out / "OUVNAUT_IN_C99.xml")).getroot())
    assert "De la pointe Saint-Mathieu" in md.identification[0].title
    dates = {d.type: d.date for d in md.identification[0].date}
    assert dates["publication"] == "2021-03-10" and dates["revision"] == "2024-01-17"


def test_unknown_elements_are_rendered_and_warned(rendered):
    out, report = rendered["c99"]
    warned = [w for w in report["warnings"] if w["code"] == "unknown-element"]
    assert {re.search(r"<(\w+)>", w["message"]).group(1) for w in warned} == {"abbr", "encadre"}
    assert all(w["line"] for w in warned)
    text = " ".join(" ".join(page_texts(out / "document.pdf")).split())
    html = (out / "document.html").read_text("utf-8")
    for snippet in re.findall(r'<div class="inconnu" data-element="encadre">([^<]{10,40})', html):
        assert " ".join(snippet.split())[:30] in text


def test_missing_illustration_is_a_placeholder_and_a_warning(rendered):
    out, report = rendered["c99"]
    missing = [w for w in report["warnings"] if w["code"] == "missing-image"]
    assert len(missing) == 1 and "3.2.B." in missing[0]["message"] and missing[0]["line"]
    text = " ".join(page_texts(out / "document.pdf"))
    assert "Illustration 3.2.B. non disponible" in text


def test_images_are_embedded(rendered):
    out, _ = rendered["c99"]
    html = (out / "document.html").read_text("utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) >= 9
    assert any(s.endswith(".svg") for s in srcs) and any(s.endswith((".png", ".jpg", ".jpeg")) for s in srcs)
    for s in srcs:
        assert (out / s).is_file()
    with pikepdf.open(out / "document.pdf") as pdf:
        images = sum(len(p.get_images()) for p in pdf.pages)
        forms = sum(1 for p in pdf.pages for _k, x in p.resources.get("/XObject", {}).items()
                    if x.get("/Subtype") == "/Form")
    assert images >= 2 and forms >= 1  # raster pictures and vector (SVG → form XObject) drawings


def test_two_documents_give_two_pdfs_and_an_archive(rendered):
    out, report = rendered["g9"]
    assert [d["pdf"] for d in report["documents"]] == ["document.pdf", "annexe.pdf"]
    with zipfile.ZipFile(out / "archive.zip") as z:
        assert sorted(z.namelist()) == ["annexe.pdf", "document.pdf"]
        assert z.read("annexe.pdf") == (out / "annexe.pdf").read_bytes()


def test_continuous_rendering(rendered, referentiel, tmp_path):
    """The flag file removes chapter page breaks and TOC page numbers: compare with and without it."""
    out, report = rendered["lf1"]
    assert report["continuous"] is True
    html = (out / "document.html").read_text("utf-8")
    assert 'class="continu"' in html and 'class="pn"' not in html
    src = tmp_path / "c99"
    shutil.copytree(referentiel / "c99", src)
    (src / "idocument.donottouch.xml").write_text("<donottouch/>", "utf-8")
    cont = render_ouvrage(src, tmp_path / "out", commun_dir=referentiel / "commun")
    paginated = rendered["c99"][1]
    assert cont["documents"][0]["body_pages"] < paginated["documents"][0]["body_pages"]
    toc = page_texts(tmp_path / "out" / "document.pdf")[2]
    assert "Renseignements généraux" in toc
    assert not re.search(r"\.\s*\d+\s*$", toc.split("Renseignements généraux")[1].splitlines()[0])


def test_report_counts(rendered):
    out, report = rendered["c99"]
    data = json.loads((out / "report.json").read_text("utf-8"))
    assert data["counts"] == report["counts"] and data["warnings"] == report["warnings"]
    c = report["counts"]
    assert c["titles"] == 53 and c["alineas"] == 103 and c["figures"] == 11 and c["tables"] == 2
    assert c["index_terms"] == 39 and c["index_entries"] == 125
    assert c["pages"] == report["documents"][0]["pages"]
    assert {"load", "html", "pdf", "vignette", "metadata", "total"} <= set(report["seconds"])
    assert report["warning_counts"]["missing-image"] == 1
