"""Tables: flat spreadsheet XML (OpenOffice.org 1.x / OpenDocument 1.2) → model, HTML, PDF."""

from __future__ import annotations

import time
from pathlib import Path

import lxml.html
import pdfplumber
import pytest

from pdfgen_pipeline.render.tables import (
    MAX_CELLS,
    TABLE_CSS,
    Table,
    load_table_bytes,
    load_table_file,
    refusing_url_fetcher,
    render_table_pdf,
    table_is_wide,
    tables_to_html,
)
from pdfgen_pipeline.xmlsafe import XmlInputError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tableaux"
NBSP, NNBSP = "\u00a0", "\u202f"

ODF_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
    "<office:body><office:spreadsheet>"
)
ODF_TAIL = "</office:spreadsheet></office:body></office:document>"


def odf(table_body: str, name: str = "T") -> bytes:
    """A minimal ODF 1.2 flat spreadsheet with one table."""
    return (ODF_HEAD + f'<table:table table:name="{name}">{table_body}</table:table>' + ODF_TAIL).encode()


def row(*cells: str, repeat: int = 1) -> str:
    rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rep}>{''.join(cells)}</table:table-row>"


def cell(text: str | None = None, **attrs: object) -> str:
    a = "".join(f' table:{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    body = f"<text:p>{text}</text:p>" if text is not None else ""
    return f"<table:table-cell{a}>{body}</table:table-cell>"


def assert_grid_consistent(table: Table) -> None:
    """Every position is the anchor of exactly one span or covered by exactly one."""
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for r, cells in enumerate(table.rows):
        assert len(cells) == table.n_cols
        for c, cl in enumerate(cells):
            if cl.covered:
                continue
            assert r + cl.rowspan <= table.n_rows and c + cl.colspan <= table.n_cols
            for rr in range(r, r + cl.rowspan):
                for cc in range(c, c + cl.colspan):
                    assert (rr, cc) not in owner, f"{(rr, cc)} in two spans"
                    owner[(rr, cc)] = (r, c)
    for r, cells in enumerate(table.rows):
        for c, cl in enumerate(cells):
            assert (r, c) in owner
            assert cl.covered == (owner[(r, c)] != (r, c))


def html_tables(fragment: str) -> list[lxml.html.HtmlElement]:
    doc = lxml.html.fromstring(f"<div>{fragment}</div>")
    return doc.findall(".//table")


# ---------------------------------------------------------------------------------------------
# OpenOffice.org 1.x
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feux() -> Table:
    tables = load_table_file(FIXTURES / "ooo1_feux.xml")
    assert len(tables) == 1
    return tables[0]


def test_ooo1_grid_texts_and_trimming(feux: Table) -> None:
    assert feux.name == "Feux"
    # 256 declared columns and 32,000 rows: trailing empties trimmed to the content
    assert (feux.n_rows, feux.n_cols) == (7, 4)
    assert feux.header_rows == 2
    assert feux.texts() == [
        ["N°", "Position", "", "Caractéristiques"],
        ["", "Latitude", "Longitude", ""],
        ["1", f"48°{NBSP}38′{NBSP}55″{NBSP}N", "1°   58′ W", "Fl(2) W 6s\nPhare d’Œuvre — tour"],
        ["—", "idem", "idem", "Oc R 4s"],  # number-columns-repeated="2" → two "idem"
        ["—", "idem", "idem", "Oc R 4s"],  # number-rows-repeated="2"
        ["Cœur", f"Note{NNBSP}: 12{NBSP}‰ — voir l’avis", "", ""],  # source white space collapsed
        ["", "", "fin", ""],
    ]
    assert feux.warnings == []
    assert_grid_consistent(feux)


def test_ooo1_spans_and_covered(feux: Table) -> None:
    spans = {
        (r, c): (cl.rowspan, cl.colspan)
        for r, cells in enumerate(feux.rows)
        for c, cl in enumerate(cells)
        if not cl.covered and (cl.rowspan, cl.colspan) != (1, 1)
    }
    assert spans == {(0, 0): (2, 1), (0, 1): (1, 2), (0, 3): (2, 1), (5, 0): (2, 1), (5, 1): (1, 3)}
    covered = {(r, c) for r, cells in enumerate(feux.rows) for c, cl in enumerate(cells) if cl.covered}
    assert covered == {(0, 2), (1, 0), (1, 3), (5, 2), (5, 3), (6, 0)}


def test_ooo1_styles_from_automatic_styles(feux: Table) -> None:
    n = feux.cell(0, 0)
    assert (n.bold, n.italic, n.align) == (True, False, "center")
    lat = feux.cell(1, 1)
    assert (lat.bold, lat.italic, lat.align) == (False, True, "center")
    dash = feux.cell(3, 0)
    assert (dash.align, dash.valign) == ("right", "middle")  # fo:text-align="end"
    assert feux.cell(2, 0).align == "right"  # a number without explicit alignment
    assert feux.cell(2, 1).align is None
    # bold / italic runs from text spans
    runs = [(r.text, r.bold, r.italic) for r in feux.cell(2, 3).text_runs]
    assert runs == [("Fl(2) W 6s\nPhare d’", False, False), ("Œuvre", True, False), (" — tour", False, False)]
    assert [(r.text, r.italic) for r in feux.cell(3, 3).text_runs] == [("Oc", True), (" R 4s", False)]
    assert feux.column_widths == ["1.500cm", "3.000cm", "3.000cm", "6.000cm"]


def test_ooo1_html_structure(feux: Table) -> None:
    (table,) = html_tables(tables_to_html([feux], table_id="tab-1.2.A"))
    assert table.get("class") == "tableau" and table.get("id") == "tab-1.2.A"
    assert table.get("style") == "width: min(100%, 13.50cm)"  # 1.5 + 3 + 3 + 6 cm
    cols = table.findall("colgroup/col")
    assert [c.get("style") for c in cols] == [
        "width: 11.11%",
        "width: 22.22%",
        "width: 22.22%",
        "width: 44.44%",
    ]
    head = table.findall("thead/tr")
    body = table.findall("tbody/tr")
    assert len(head) == 2 and len(body) == 5
    assert [th.text_content() for th in head[0]] == ["N°", "Position", "Caractéristiques"]
    assert [(th.get("rowspan"), th.get("colspan")) for th in head[0]] == [
        ("2", None),
        (None, "2"),
        ("2", None),
    ]
    assert all(th.tag == "th" for tr in head for th in tr)
    assert set(head[0][0].get("class").split()) == {"bold", "align-center"}
    assert set(head[1][0].get("class").split()) == {"italic", "align-center"}
    # covered cells omitted: 4, 4, 4, 2 (1 + colspan 3), 3 (rowspan above) cells
    assert [len(tr) for tr in body] == [4, 4, 4, 2, 3]
    light = body[0][3]
    assert light.find("br") is not None
    assert light.find("b").text == "Œuvre"
    assert light.text_content() == "Fl(2) W 6sPhare d’Œuvre — tour"
    assert body[0][1].text_content() == f"48°{NBSP}38′{NBSP}55″{NBSP}N"
    spaces = body[0][2].find("span")
    assert spaces.get("class") == "sp" and spaces.text == "   "
    assert body[1][3].find("i").text == "Oc"
    assert body[3][1].get("colspan") == "3" and "italic" in body[3][1].get("class")
    assert body[3][0].get("rowspan") == "2"


# ---------------------------------------------------------------------------------------------
# OpenDocument 1.2
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marees() -> Table:
    (table,) = load_table_file(FIXTURES / "odf12_marees.xml")
    return table


def test_odf12_grid(marees: Table) -> None:
    assert marees.name == "Marées"
    assert (marees.n_rows, marees.n_cols, marees.header_rows) == (6, 4, 1)
    assert marees.texts() == [
        ["Port", "Hauteurs\n(m)", "", "Remarque"],
        ["Saint‑Malo", "12,5", "3", "PM\tBM vives‑eaux et mortes"],  # annotation not printed
        ["", "≈ 0,5 m", "≈ 0,5 m", ""],
        ["", "≈ 0,5 m", "≈ 0,5 m", ""],
        ["Total (brut)", "Voir www.shom.fr et ceci <b>pas du HTML</b> & œ", "", ""],
        ["", "", "", ""],
    ]
    assert (marees.cell(1, 0).rowspan, marees.cell(4, 1).rowspan, marees.cell(4, 1).colspan) == (3, 2, 3)
    assert [marees.cell(5, c).covered for c in range(4)] == [False, True, True, True]
    assert marees.column_widths == ["2.5cm", "5cm", "5cm", "0.889in"]
    assert marees.warnings == []
    assert_grid_consistent(marees)


def test_odf12_styles(marees: Table) -> None:
    port = marees.cell(0, 0)  # ce1: bold inherited from the common style "Entete", centred
    assert (port.bold, port.align, port.valign) == (True, "center", "middle")
    assert marees.cell(2, 1).italic  # no style-name: the column's default-cell-style-name (ce2)
    assert not marees.cell(1, 3).italic  # explicit "Default" wins over the column default
    assert marees.cell(1, 2).align == "right"  # text-align-source="value-type" on a float
    total = marees.cell(4, 0)
    assert (total.bold, total.italic, total.align) == (True, True, "right")
    assert [(r.text, r.bold) for r in total.text_runs] == [("Total ", True), ("(brut)", False)]
    remark = marees.cell(1, 3)
    assert [(r.text, r.bold, r.italic) for r in remark.text_runs] == [
        ("PM\tBM ", False, False),
        ("vives‑eaux", True, False),
        (" et ", False, False),
        ("mortes", False, True),
    ]
    see = marees.cell(4, 1)
    assert see.paragraphs[0].align == "justify"
    assert [r.href for r in see.text_runs if r.href] == ["https://www.shom.fr/avis"]  # javascript: dropped


def test_odf12_html_escapes_and_links(marees: Table) -> None:
    fragment = tables_to_html([marees])
    assert "<b>pas du HTML</b>" not in fragment
    (table,) = html_tables(fragment)
    assert table.get("id") is None
    assert [len(tr) for tr in table.findall("thead/tr")] == [3]
    header = table.find("thead/tr")[1]
    assert [p.text for p in header.findall("p")] == ["Hauteurs", "(m)"]
    see = table.findall("tbody/tr")[3][1]
    assert see.text_content() == "Voir www.shom.fr et ceci <b>pas du HTML</b> & œ"
    assert see.findall(".//b") == []
    assert [a.get("href") for a in see.iter("a")] == ["https://www.shom.fr/avis"]
    assert "javascript" not in fragment
    assert "align-justify" in see.get("class")
    total = table.findall("tbody/tr")[3][0]
    assert set(total.get("class").split()) == {"bold", "italic", "align-right"}
    assert total.find("span").get("class") == "normal-weight" and total.find("span").text == "(brut)"
    assert table.find(".//span[@class='tab']").text == "\t"
    assert "commentaire interne" not in fragment


# ---------------------------------------------------------------------------------------------
# Several tables, huge repeats, spans, caps, errors
# ---------------------------------------------------------------------------------------------


def test_two_tables_in_one_file() -> None:
    tables = load_table_file(FIXTURES / "deux_tableaux.xml")
    assert [t.name for t in tables] == ["Bouées", "Amers", "Feuille3"]
    assert tables[0].texts() == [["Nom", "Feu"], ["Basse Bréfort", "Q(9) 15s"]]
    assert tables[1].texts() == [["Clocher"]]
    assert tables[2].rows == [] and tables[2].warnings == ["table 'Feuille3': empty table"]
    html_list = html_tables(tables_to_html(tables, table_id="t"))
    assert [t.get("id") for t in html_list] == ["t", "t-2"]  # the empty sheet is not rendered
    assert [t.get("data-name") for t in html_list] == ["Bouées", "Amers"]
    assert html_list[1].find("tbody/tr/td").text == "Clocher"


def test_huge_trailing_repeat_is_trimmed_quickly() -> None:
    start = time.perf_counter()
    (table,) = load_table_file(FIXTURES / "repetition_enorme.xml")
    assert time.perf_counter() - start < 2.0
    assert (table.n_rows, table.n_cols) == (4, 7)
    assert table.texts() == [
        ["a", "", "", "", "", "", "g"],
        [""] * 7,  # empty rows between contents are kept
        [""] * 7,
        ["b", "", "", "", "", "", ""],
    ]
    assert table.column_widths == [None] * 7


def test_content_far_away_is_refused_without_materialising() -> None:
    data = odf(row(cell("a")) + row(cell(), repeat=2_000_000) + row(cell(), cell("far")))
    start = time.perf_counter()
    with pytest.raises(XmlInputError, match=r"too large: 2000002 rows × 2 columns") as err:
        load_table_bytes(data, "loin.xml")
    assert time.perf_counter() - start < 2.0
    assert err.value.file == "loin.xml"


def test_repeated_content_hits_the_cell_cap() -> None:
    data = odf(row(cell("x"), repeat=MAX_CELLS + 5))
    with pytest.raises(XmlInputError, match=f"too many cells \\(more than {MAX_CELLS}\\)") as err:
        load_table_bytes(data, "cap.xml")
    assert str(err.value).startswith("cap.xml:2: ")
    assert err.value.line == 2  # the line of the repeated row


def test_span_beyond_the_table_is_clipped() -> None:
    (table,) = load_table_file(FIXTURES / "span_depasse.xml")
    assert (table.n_rows, table.n_cols) == (3, 3)
    large = table.cell(1, 1)
    assert (large.text, large.rowspan, large.colspan) == ("large", 2, 2)
    assert [table.cell(2, 0).text, table.cell(2, 0).covered] == ["A3", False]
    assert len(table.warnings) == 1
    assert "B2" in table.warnings[0] and "clipped" in table.warnings[0]
    assert_grid_consistent(table)
    (html_table,) = html_tables(tables_to_html([table]))
    td = html_table.findall("tbody/tr")[1][1]
    assert (td.get("rowspan"), td.get("colspan")) == ("2", "2")


def test_overlapping_span_is_shrunk_around_a_real_cell() -> None:
    data = odf(
        row(cell("A1", number_columns_spanned=3, number_rows_spanned=2), cell("x"), cell("D1"))
        + row(cell("A2"), cell(), cell(), cell("D2"))
    )
    (table,) = load_table_bytes(data, "chevauchement.xml")
    a1 = table.cell(0, 0)
    assert (a1.rowspan, a1.colspan) == (1, 1)  # B1 holds "x": the span cannot cover it
    assert table.texts()[0] == ["A1", "x", "D1", ""]
    assert any("A1" in w and "overlaps" in w for w in table.warnings)
    assert_grid_consistent(table)


def test_covered_cells_hidden_text_and_orphans() -> None:
    data = odf(
        row(
            cell("M", number_columns_spanned=2),
            "<table:covered-table-cell><text:p>caché</text:p></table:covered-table-cell>",
            "<table:covered-table-cell><text:p>orphelin</text:p></table:covered-table-cell>",
        )
    )
    (table,) = load_table_bytes(data, "couvertes.xml")
    assert table.texts() == [["M", "", "orphelin"]]
    assert table.cell(0, 1).covered and not table.cell(0, 2).covered
    assert any("caché" in w for w in table.warnings)
    assert any("outside any merged cell" in w for w in table.warnings)
    assert_grid_consistent(table)


def test_white_space_processing() -> None:
    body = '<text:p>  a  \n   b<text:s text:c="2"/>c<text:s/></text:p><text:p/>'
    (table,) = load_table_bytes(odf(row(f"<table:table-cell>{body}</table:table-cell>")), "ws.xml")
    assert [p.text for p in table.cell(0, 0).paragraphs] == ["a b  c ", ""]
    (td,) = html_tables(tables_to_html([table]))[0].iter("td")
    assert [p.text_content() for p in td.findall("p")] == ["a b  c ", ""]


def test_malformed_file_names_file_line_and_column() -> None:
    with pytest.raises(XmlInputError) as err:
        load_table_file(FIXTURES / "malforme.xml")
    assert err.value.line == 7 and err.value.column
    assert f"malforme.xml:7:{err.value.column}: malformed XML" in str(err.value)


def test_non_spreadsheet_roots_are_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.xml"
    page.write_text('<?xml version="1.0"?>\n<html><body><table/></body></html>', encoding="utf-8")
    with pytest.raises(XmlInputError, match="expected root office:document") as err:
        load_table_file(page)
    assert str(err.value).startswith(f"{page}:2:")
    text_doc = ODF_HEAD.replace("spreadsheet", "text", 1).replace("<office:spreadsheet>", "")
    with pytest.raises(XmlInputError, match=r"expected office:class=\"spreadsheet\""):
        load_table_bytes((text_doc + "</office:body></office:document>").encode(), "texte.xml")
    ooo_text = (
        '<office:document xmlns:office="http://openoffice.org/2000/office" office:class="text">'
        "<office:body/></office:document>"
    )
    with pytest.raises(XmlInputError, match="found 'text'"):
        load_table_bytes(ooo_text.encode(), "ooo.xml")
    with pytest.raises(XmlInputError, match="no table:table"):
        load_table_bytes((ODF_HEAD + ODF_TAIL).encode(), "vide.xml")


def test_entities_are_refused() -> None:
    data = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        + ODF_HEAD.split("\n", 1)[1]
        + '<table:table table:name="T">'
        + row(cell("&b;"))
        + "</table:table>"
        + ODF_TAIL
    ).encode()
    with pytest.raises(XmlInputError, match="DOCTYPE"):
        load_table_bytes(data, "xxe.xml")


def test_bad_repeat_values_are_tolerated_with_a_warning() -> None:
    data = odf(row(cell("a", number_columns_repeated="-3"), cell("b", number_columns_repeated="deux")))
    (table,) = load_table_bytes(data, "rep.xml")
    assert table.texts() == [["a", "b"]]
    assert sum("invalid number-columns-repeated" in w for w in table.warnings) == 2


# ---------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------


def test_render_table_pdf_portrait(tmp_path: Path, feux: Table) -> None:
    out = tmp_path / "feux.pdf"
    assert not table_is_wide(feux)
    pages = render_table_pdf(FIXTURES / "ooo1_feux.xml", out, title="Tableau 1.2.A — Feux")
    assert pages == 1
    with pdfplumber.open(out) as pdf:
        assert len(pdf.pages) == 1
        page = pdf.pages[0]
        assert page.width < page.height  # A4 portrait
        assert round(page.width) == 595
        text = page.extract_text()
        chars = page.chars
    for expected in ("Tableau 1.2.A — Feux", "Phare d’Œuvre — tour", "Cœur", "12", "‰", "l’avis", "Latitude"):
        assert expected in text
    assert "48° 38′ 55″ N" in text.replace(NBSP, " ")
    assert NBSP in {c["text"] for c in chars}  # non-breaking spaces reach the PDF
    bold = "".join(c["text"] for c in chars if "Bold" in c["fontname"])
    assert "Œuvre" in bold and "Position" in bold and "Latitude" not in bold
    italic = "".join(c["text"] for c in chars if "Oblique" in c["fontname"])
    assert "Latitude" in italic and "Oc" in italic


def test_render_table_pdf_wide_and_long_table(tmp_path: Path) -> None:
    header = row(*(cell(f"<text:span>Col{i}</text:span>") for i in range(10)))
    lines = "".join(row(*(cell(f"r{n}c{i}") for i in range(10))) for n in range(120))
    src = tmp_path / "large.xml"
    src.write_bytes(odf(f"<table:table-header-rows>{header}</table:table-header-rows>{lines}"))
    (table,) = load_table_file(src)
    assert table.n_cols == 10 and table_is_wide(table)
    out = tmp_path / "out" / "large.pdf"
    pages = render_table_pdf(src, out)
    with pdfplumber.open(out) as pdf:
        assert len(pdf.pages) == pages >= 2
        first, last = pdf.pages[0], pdf.pages[-1]
        assert first.width > first.height  # landscape
        assert "r0c0" in first.extract_text()
        last_text = last.extract_text()
        assert "r119c9" in last_text
        assert "Col0" in last_text and "Col9" in last_text  # header rows repeated on each page
        assert "r0c0" not in last_text


def test_table_wider_than_the_page_is_fitted(tmp_path: Path) -> None:
    style = (
        '<office:automatic-styles><style:style style:name="co1" style:family="table-column">'
        '<style:table-column-properties style:column-width="8cm"/></style:style></office:automatic-styles>'
    )
    head = ODF_HEAD.replace(
        "<office:document ", '<office:document xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    ).replace("<office:body>", style + "<office:body>")
    body = '<table:table-column table:style-name="co1" table:number-columns-repeated="5"/>' + row(
        *(cell(f"mot{i}") for i in range(5))
    )
    src = tmp_path / "large.xml"
    src.write_text(head + f'<table:table table:name="L">{body}</table:table>' + ODF_TAIL, encoding="utf-8")
    (table,) = load_table_file(src)
    assert table.column_widths == ["8cm"] * 5 and table_is_wide(table)  # 40 cm, only 5 columns
    out = tmp_path / "large.pdf"
    assert render_table_pdf(src, out) == 1
    with pdfplumber.open(out) as pdf:
        page = pdf.pages[0]
        words = {w["text"]: w for w in page.extract_words()}
        assert page.width > page.height
        assert set(words) == {f"mot{i}" for i in range(5)}
        assert max(w["x1"] for w in words.values()) < page.width - 50  # inside the right margin
        assert max(line["x1"] for line in page.lines) < page.width - 50


def test_refusing_fetcher_refuses_everything() -> None:
    from weasyprint import HTML
    from weasyprint.urls import URLFetchingError

    fetcher = refusing_url_fetcher()
    with pytest.raises(URLFetchingError):
        fetcher.fetch("file:///etc/passwd")
    html = '<img src="file:///etc/passwd"><img src="http://127.0.0.1:1/x.png"><p>ok</p>'
    document = HTML(string=html, base_url=None, url_fetcher=fetcher).render()  # skipped, not fatal
    assert len(document.pages) == 1
    assert "file:///etc/passwd" in fetcher.refused
    assert any(u.startswith("http://127.0.0.1:1/") for u in fetcher.refused)


def test_table_css_covers_print_needs() -> None:
    for rule in ("table-header-group", "break-inside: avoid", "border-collapse: collapse", ".align-center"):
        assert rule in TABLE_CSS
