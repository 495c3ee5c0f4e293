"""Loading ouvrages into the typed model: the model must say what the XML says.

Expected numbers are computed from the XML with lxml, independently of the loader."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from pdfgen_pipeline.ouvrage.loader import OuvrageError, fold, load_document, load_ouvrage
from pdfgen_pipeline.ouvrage.model import (
    SECTION_TAGS,
    Alinea,
    Document,
    Illustration,
    Inline,
    Liste,
    Section,
    TableauRef,
    Texte,
    UnknownBlock,
)
from pdfgen_pipeline.xmlsafe import XmlInputError

WORD = re.compile(r"\w+")
NBSP = "\u00a0"
NNBSP = "\u202f"


# --------------------------------------------------------------------------- helpers


def _xml(path: Path) -> etree._Element:
    """The raw XML (plain lxml, no loader involved)."""
    return etree.parse(str(path)).getroot()


def _ouvrage_el(root: etree._Element) -> etree._Element:
    return next(c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "ouvrage")


def _walk(items):
    """Every model node in reading order (sections, titres' texts, alineas, blocks, list items)."""
    for it in items:
        yield it
        if isinstance(it, Section):
            yield it.titre.texte
            yield from _walk(it.children)
        elif isinstance(it, Alinea):
            yield from _walk(it.blocks)
        elif isinstance(it, Liste):
            yield from _walk(it.items)


def _nodes(doc: Document, cls) -> list:
    return [n for n in _walk(doc.content) if isinstance(n, cls)]


def _runs(doc: Document) -> list[Inline]:
    return [r for t in _nodes(doc, Texte) for r in t.runs]


def _all_model_text(doc: Document) -> list[str]:
    out = []
    for n in _walk(doc.content):
        if isinstance(n, Section):
            out += [n.titre.nmr, n.titre.numero]
        elif isinstance(n, Alinea):
            out.append(n.nmr)
        elif isinstance(n, Texte):
            out += [r.text for r in n.runs]
        elif isinstance(n, Illustration):
            out += [n.numero, n.caption, n.source]
        elif isinstance(n, TableauRef):
            out += [n.numero, n.caption]
        elif isinstance(n, UnknownBlock):
            out.append(n.text)
    return out


def _write_doc(tmp_path: Path, body: str, name: str = "document.xml") -> Path:
    p = tmp_path / name
    p.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<document>\n' + body + "\n</document>\n", "utf-8")
    return p


def _chapter(alinea_xml: str, titre_attrs: str = "") -> str:
    return (f"<ouvrage>\n<chapitre>\n<titre{titre_attrs}><numero>1.</numero><texte><txt>Titre</txt></texte>"
            f"</titre>\n{alinea_xml}\n</chapitre>\n</ouvrage>")


@pytest.fixture(scope="module")
def c99(referentiel):
    return load_ouvrage(referentiel / "c99")


@pytest.fixture(scope="module")
def c99_xml(referentiel):
    return _xml(referentiel / "c99" / "xml" / "document.xml")


# --------------------------------------------------------------------------- c99: structure


def test_c99_is_one_document_named_document(c99, referentiel):
    assert c99.key == "c99"
    assert [d.name for d in c99.documents] == ["document"]
    assert Path(c99.main.path) == referentiel / "c99" / "xml" / "document.xml"
    assert c99.continuous is False


def test_c99_sections_per_level_match_the_xml(c99, c99_xml):
    ouvrage = _ouvrage_el(c99_xml)
    expected = Counter(etree.QName(e).localname for e in ouvrage.iter(*SECTION_TAGS))
    sections = list(c99.main.iter_sections())
    assert Counter(s.tag for s in sections) == expected
    assert all(expected[t] > 0 for t in SECTION_TAGS)  # the sample exercises all 5 levels
    for s in sections:
        assert s.level == SECTION_TAGS.index(s.tag) + 1
    # reading order and title numbers as in the XML
    xml_numeros = [fold(e.findtext("titre/numero")).strip() for e in ouvrage.iter(*SECTION_TAGS)]
    assert [s.titre.numero for s in sections] == xml_numeros
    assert [s.bpn_id for s in sections] == [e.get("bpn_id", "") for e in ouvrage.iter(*SECTION_TAGS)]
    assert [c.titre.numero for c in c99.main.chapters] == [
        fold(e.findtext("titre/numero")).strip() for e in ouvrage.findall("chapitre")]


def test_c99_alineas_illustrations_tableaux_match_the_xml(c99, c99_xml):
    ouvrage = _ouvrage_el(c99_xml)
    alineas = _nodes(c99.main, Alinea)
    xml_alineas = list(ouvrage.iter("alinea"))
    assert len(alineas) == len(xml_alineas) > 50
    assert [a.nmr for a in alineas] == [e.findtext("nmrAlinea").strip() for e in xml_alineas]

    illus = _nodes(c99.main, Illustration)
    xml_illus = list(ouvrage.iter("illustration"))
    assert len(illus) == len(xml_illus) > 5
    assert [i.numero for i in illus] == [e.findtext("numero").strip() for e in xml_illus]
    assert [i.caption for i in illus] == [fold(e.findtext("txt")).strip() for e in xml_illus]
    assert [i.source for i in illus] == [fold(e.findtext("source") or "").strip() for e in xml_illus]
    assert [i.orientation for i in illus] == [int(e.get("orientation", "0")) for e in xml_illus]
    assert [i.interactive for i in illus] == [e.get("interactive") == "oui" for e in xml_illus]
    assert [i.t_illustration for i in illus] == [e.get("tIllustration", "") for e in xml_illus]
    assert [i.line for i in illus] == [e.sourceline for e in xml_illus]
    assert isinstance(c99.main.content[0], Illustration)  # the plan 0.0. directly under <ouvrage>

    tabs = _nodes(c99.main, TableauRef)
    xml_tabs = list(ouvrage.iter("tableau"))
    assert len(tabs) == len(xml_tabs) > 0
    assert [t.numero for t in tabs] == [e.findtext("numero").strip() for e in xml_tabs]
    assert [t.caption for t in tabs] == [fold(e.findtext("txt")).strip() for e in xml_tabs]

    listes = _nodes(c99.main, Liste)
    assert len(listes) == len(list(ouvrage.iter("liste")))
    assert [len(lst.items) for lst in listes] == [len(e.findall("texte")) for e in ouvrage.iter("liste")]


def test_c99_principal_terms_match_the_xml(c99, c99_xml):
    xml_terms = [fold("".join(e.itertext())) for e in _ouvrage_el(c99_xml).iter("principal")]
    terms = [r.text for r in _runs(c99.main) if r.kind == "principal"]
    assert terms == xml_terms
    assert len(set(terms)) < len(terms)  # repeated terms are kept, once per occurrence
    assert {"Ouessant", "Basse Œillet", "Île Vierge", "chenal du Four"} <= set(terms)


def test_c99_every_word_of_the_content_is_in_the_model(c99, c99_xml):
    xml_words = Counter(WORD.findall(" ".join(_ouvrage_el(c99_xml).itertext())))
    model_words = Counter(WORD.findall(" ".join(_all_model_text(c99.main))))
    assert model_words == xml_words


def test_c99_non_breaking_spaces_are_all_kept(c99, c99_xml):
    xml_text = "".join(_ouvrage_el(c99_xml).itertext())
    model_text = "".join(_all_model_text(c99.main))
    assert xml_text.count(NBSP) > 100
    assert model_text.count(NBSP) == xml_text.count(NBSP)


# --------------------------------------------------------------------------- c99: metadata


def test_c99_metadata(c99):
    m = c99.main.metadata
    assert m.titre == "De la pointe Saint-Mathieu à l’Aber-Wrac’h, îles d’Ouessant et de Molène"
    assert (m.pays, m.region) == ("France", "(côte Ouest — Finistère Nord)")
    assert m.serie == "c99"
    assert (m.t_ouvrage, m.nom_court, m.nom_long) == ("livre", "in", "Instructions nautiques")
    assert m.nota.startswith("Ouvrage d’exemple, fictif : ne pas utiliser pour la navigation. Avant de se servir")
    assert (m.gan, m.bat, m.dms) == ("2024-01-17", "2021-02-24", "2021-03-10")
    assert m.maj_texte == "Cette version annule et remplace la précédente"
    assert m.date_edition == "2021-03-10"
    assert m.date_fichier == "2024-01-16"

    assert m.auteur is not None and m.editeur is not None
    assert (m.auteur.identite.prenom, m.auteur.identite.nom) == ("Anne", "Le Gall")
    assert m.auteur.contact.email == "publications@exemple.shom.fr"
    org = "Service hydrographique et océanographique de la marine"  # folded from a wrapped line
    assert m.editeur.identite.organisation == org
    assert m.editeur.display_name == org
    assert m.editeur.identite.abrev == "Shom"
    assert m.editeur.contact == type(m.editeur.contact)("diffusion@exemple.shom.fr", "www.shom.fr")
    a = m.editeur.adresse
    assert (a.course_speciale, a.t_course_speciale) == ("90001", "CS")
    assert (a.boite_postale, a.t_boite_postale) == ("40099", "BP")
    assert a.lines() == ["13 rue du Chatellier", "CS 90001", "BP 40099", "29228 Brest Cedex 2", "France"]

    c = m.copyright
    assert c is not None
    assert c.label == "Tous droits réservés"
    assert (c.annee, c.pays, c.identite.abrev) == ("2021", "France", "Shom")
    assert c.texte.startswith("Le présent ouvrage d’exemple rassemble des textes, des croquis et des tableaux rédigés")
    assert c.texte.endswith("sans l’accord préalable de l’éditeur.")
    assert "\n" not in c.texte and "  " not in c.texte


def test_sparse_metadata_of_lf1(referentiel):
    lf1 = load_ouvrage(referentiel / "lf1")
    m = lf1.main.metadata
    assert m.titre == "Feux et signaux de brume — Finistère Nord (exemple)"
    assert (m.serie, m.nom_long, m.nom_court) == ("lf1", "Livre des feux et signaux de brume", "")
    assert m.auteur is None and m.editeur is None and m.copyright is None
    assert (m.gan, m.date_fichier, m.pays, m.region) == ("", "", "", "")


def test_missing_metadata_is_a_warning_not_an_error(tmp_path):
    doc = load_document(_write_doc(tmp_path, _chapter("")))
    assert doc.metadata.titre == ""
    assert [w.code for w in doc.warnings] == ["no-metadata"]


# --------------------------------------------------------------------------- text folding


def test_fold_keeps_non_breaking_spaces_and_folds_indentation():
    assert fold("Les feux\r\n                            de la côte") == "Les feux de la côte"
    assert fold("a \t\n\n  b") == "a b"
    assert fold(f"n°{NBSP}03/2024{NBSP}: 1{NNBSP}852{NBSP}m") == f"n°{NBSP}03/2024{NBSP}: 1{NNBSP}852{NBSP}m"
    assert fold(f"«{NBSP}\n   x{NBSP}»") == f"«{NBSP} x{NBSP}»"
    assert fold(None) == "" and fold("") == ""


def test_wrapped_txt_is_folded_and_nbsp_kept_in_runs(tmp_path):
    body = _chapter(f"<alinea><nmrAlinea>07</nmrAlinea><texte><txt>Port{NBSP}: 1{NNBSP}852{NBSP}m,\n"
                    f"                            puis «{NBSP}suite{NBSP}»</txt></texte></alinea>")
    doc = load_document(_write_doc(tmp_path, body))
    (al,) = _nodes(doc, Alinea)
    assert al.blocks[0].runs == [Inline("txt", f"Port{NBSP}: 1{NNBSP}852{NBSP}m, puis «{NBSP}suite{NBSP}»")]


def test_nbsp_between_inline_elements_is_kept(tmp_path):
    body = _chapter(f"<alinea><nmrAlinea>07</nmrAlinea><texte><txt>n°</txt>{NBSP}<txt>3</txt>"
                    f"<principal>Ouessant</principal>{NNBSP}<txt>;</txt></texte></alinea>")
    doc = load_document(_write_doc(tmp_path, body))
    (al,) = _nodes(doc, Alinea)
    assert al.blocks[0].plain == f"n°{NBSP}3Ouessant{NNBSP};"


# --------------------------------------------------------------------------- corrections


def test_tmaj_tdate_on_alineas_and_titres_match_the_xml(c99, c99_xml):
    ouvrage = _ouvrage_el(c99_xml)
    alineas = _nodes(c99.main, Alinea)
    xml_alineas = list(ouvrage.iter("alinea"))
    assert [(a.t_maj, a.t_date) for a in alineas] == [(e.get("tMaj", ""), e.get("tDate", "")) for e in xml_alineas]
    assert [a.corrected for a in alineas] == [e.get("tMaj") == "modification" for e in xml_alineas]

    titres = [s.titre for s in c99.main.iter_sections()]
    xml_titres = [e.find("titre") for e in ouvrage.iter(*SECTION_TAGS)]
    assert [(t.t_maj, t.t_date) for t in titres] == [(e.get("tMaj", ""), e.get("tDate", "")) for e in xml_titres]
    assert [t.nmr for t in titres] == [e.findtext("nmrAlinea", "").strip() for e in xml_titres]

    modified = [t.numero for t in titres if t.t_maj == "modification"]
    assert modified == [e.findtext("numero").strip() for e in xml_titres if e.get("tMaj") == "modification"]
    assert modified  # the sample has corrected titles (2.1., 2.1.1.)
    assert sum(a.corrected for a in alineas) > 0
    assert {a.t_date for a in alineas if a.corrected} == {
        e.get("tDate") for e in xml_alineas if e.get("tMaj") == "modification"}


# --------------------------------------------------------------------------- inline kinds


def test_inline_kinds_of_c99(c99, c99_xml):
    runs = _runs(c99.main)
    by_kind = Counter(r.kind for r in runs)
    ouvrage = _ouvrage_el(c99_xml)

    expo = [r.text for r in runs if r.kind == "exposant"]
    assert expo == [e.text for e in ouvrage.iter("txt") if e.get("tTxt") == "exposant"]
    assert {"er", "2"} <= set(expo)

    assert by_kind["attention"] == sum(1 for e in ouvrage.iter("txt") if e.get("tTxt") == "attention") > 0
    assert all(r.text == "" for r in runs if r.kind == "attention")
    valo = [r.text for r in runs if r.kind == "valorisation"]
    assert f"Attention{NBSP}:" in valo and "" in valo

    refs = [(r.subkind, r.text) for r in runs if r.kind == "reference"]
    assert refs == [(e.get("tReference"), fold("".join(e.itertext()))) for e in ouvrage.iter("reference")]
    assert {k for k, _ in refs} == {"ouvrage", "reglement", "mouillage", "carte"}

    liens = [(r.subkind, r.target) for r in runs if r.kind == "lien"]
    xml_liens = [(e.get("tLien"), fold(e.findtext("numero") or e.findtext("txt")).strip())
                 for e in ouvrage.iter("lien")]
    assert liens == xml_liens
    assert ("web", "www.shom.fr") in liens
    assert ("mail", "renseignements@exemple.shom.fr") in liens
    assert {t for k, t in liens if k == "texte"} == {"2.1.2.", "2.2.3.1."}
    assert {t for k, t in liens if k == "illustration"} == {"1.2.A.", "2.1.B.", "3.2.A.", "3.2.B."}
    assert all(r.text == r.target for r in runs if r.kind == "lien")


def test_principal_anchor_and_secondaire_idref(c99):
    runs = _runs(c99.main)
    principals = [r for r in runs if r.kind == "principal"]
    assert all(r.anchor for r in principals)
    assert len({r.anchor for r in principals}) == len(principals)
    assert all(r.bpn_id for r in principals)
    secondaires = [r for r in runs if r.kind == "secondaire"]
    assert [(r.text, r.idref) for r in secondaires] == [("baie de Lampaul", "c99-ouessant"),
                                                        ("port de Porz Arlan", "c99-ouessant")]
    # the referenced principal carries the XML id
    assert [r.text for r in principals if r.idref == "c99-ouessant"] == ["Ouessant"]


def test_inline_kinds_from_a_small_document(tmp_path):
    body = _chapter(
        '<alinea tMaj="nouveau" tDate="2024-02-01"><nmrAlinea>07</nmrAlinea><texte>'
        '<txt>km</txt><txt tTxt="exposant">2</txt><txt tTxt="attention"/>'
        '<principal bpn_id="p1" id="ix-a">Anse A</principal><secondaire idref="ix-a">cale B</secondaire>'
        '<reference tReference="carte">7149</reference>'
        '<lien tLien="web"><txt>www.shom.fr</txt></lien><lien tLien="mail"><txt>a@b.fr</txt></lien>'
        '<lien tLien="texte"><numero>1.</numero></lien><lien tLien="illustration"><numero>1.A.</numero></lien>'
        "</texte></alinea>")
    doc = load_document(_write_doc(tmp_path, body))
    (al,) = _nodes(doc, Alinea)
    assert (al.t_maj, al.t_date, al.corrected) == ("nouveau", "2024-02-01", False)
    got = [(r.kind, r.text, r.subkind, r.target, r.idref) for r in al.blocks[0].runs]
    assert got == [
        ("txt", "km", "", "", ""),
        ("exposant", "2", "", "", ""),
        ("attention", "", "", "", ""),
        ("principal", "Anse A", "", "", "ix-a"),
        ("secondaire", "cale B", "", "", "ix-a"),
        ("reference", "7149", "carte", "", ""),
        ("lien", "www.shom.fr", "web", "www.shom.fr", ""),
        ("lien", "a@b.fr", "mail", "a@b.fr", ""),
        ("lien", "1.", "texte", "1.", ""),
        ("lien", "1.A.", "illustration", "1.A.", ""),
    ]
    assert al.blocks[0].runs[3].anchor
    assert [w.code for w in doc.warnings] == ["no-metadata"]


# --------------------------------------------------------------------------- unknown vocabulary


def test_c99_unknown_elements_are_reported_and_their_text_kept(c99, c99_xml):
    ouvrage = _ouvrage_el(c99_xml)
    xml_unknown = sorted((e.sourceline, e.tag) for e in ouvrage.iter("abbr", "encadre"))
    warnings = [w for w in c99.main.warnings if w.code == "unknown-element"]
    assert sorted((w.line, re.search(r"<(\w+)>", w.message).group(1)) for w in warnings) == xml_unknown
    for w in warnings:
        assert w.file == c99.main.path
        assert f"{w.file}:{w.line}:" in str(w)
    assert [w.code for w in c99.main.warnings] == ["unknown-element"] * len(xml_unknown)

    abbr = [r for r in _runs(c99.main) if r.kind == "unknown"]
    assert [(r.subkind, r.text) for r in abbr] == [("abbr", fold(e.text)) for e in ouvrage.iter("abbr")]
    blocks = _nodes(c99.main, UnknownBlock)
    assert [(b.name, b.text) for b in blocks] == [("encadre", fold(e.text).strip()) for e in ouvrage.iter("encadre")]
    assert blocks[0].text.startswith("Texte d’un encadré")


def test_unknown_elements_everywhere_keep_their_text(tmp_path):
    body = ('<autre>hors ouvrage</autre>\n<ouvrage>\n<chapitre>\n<titre><numero>1.</numero><texte><txt>T</txt>'
            '</texte><note>note de titre</note></titre>\n<cadre>bloc de chapitre</cadre>\n'
            '<alinea><nmrAlinea>07</nmrAlinea><texte><txt>a </txt><sigle>SIGLE</sigle></texte>'
            '<liste><texte><txt>un</txt></texte><puce>deux</puce></liste>\n'
            '<illustration><numero>1.A.</numero><txt>légende</txt><echelle>1/50 000</echelle></illustration>\n'
            '<tableau><numero>1.B.</numero><txt>titre</txt><unite>en mètres</unite></tableau></alinea>\n'
            '</chapitre>\n<annexe>bloc sous ouvrage</annexe>\n</ouvrage>')
    p = _write_doc(tmp_path, body)
    doc = load_document(p)
    found = {re.search(r"<(\w+)>", w.message).group(1): w.line for w in doc.warnings if w.code == "unknown-element"}
    lines = p.read_text("utf-8").splitlines()
    for name in ("autre", "note", "cadre", "sigle", "puce", "echelle", "unite", "annexe"):
        assert name in found, name
        assert f"<{name}>" in lines[found[name] - 1], name
    text = " ".join(_all_model_text(doc))
    for kept in ("hors ouvrage", "bloc de chapitre", "SIGLE", "deux", "légende 1/50 000", "titre en mètres",
                 "bloc sous ouvrage"):
        assert kept in text, kept


def test_unknown_element_in_titre_keeps_its_text(tmp_path):
    body = ('<ouvrage><chapitre><titre><numero>1.</numero><texte><txt>T</txt></texte><note>note de titre</note>'
            '</titre><alinea><nmrAlinea>07</nmrAlinea><texte><txt>x</txt></texte></alinea></chapitre></ouvrage>')
    doc = load_document(_write_doc(tmp_path, body))
    assert "note de titre" in " ".join(_all_model_text(doc))


def test_unknown_attribute_values_are_reported(tmp_path):
    body = _chapter(
        '<alinea tMaj="correction" tDate="2024-01-01"><nmrAlinea>07</nmrAlinea><texte>'
        '<txt tTxt="gras">gras</txt><reference tReference="avis">avis 12</reference>'
        '<lien tLien="ftp"><txt>ftp.shom.fr</txt></lien></texte>'
        '<illustration orientation="45"><numero>1.A.</numero><txt>légende</txt></illustration></alinea>',
        titre_attrs=' tMaj="retouche"')
    p = _write_doc(tmp_path, body)
    doc = load_document(p)
    values = [w for w in doc.warnings if w.code == "unknown-value"]
    messages = " | ".join(w.message for w in values)
    for needle in ('tMaj="correction"', 'tMaj="retouche"', 'tTxt="gras"', 'tReference="avis"', 'tLien="ftp"',
                   'orientation="45"'):
        assert needle in messages, needle
    assert len(values) == 6
    lines = p.read_text("utf-8").splitlines()
    for w in values:
        assert w.file == str(p) and w.line is not None
        value = re.search(r'"([^"]*)"', w.message).group(1)
        assert f'"{value}"' in lines[w.line - 1]
    # the text is still there, as plain runs
    (al,) = _nodes(doc, Alinea)
    runs = al.blocks[0].runs
    assert [(r.kind, r.text) for r in runs] == [("txt", "gras"), ("reference", "avis 12"), ("lien", "ftp.shom.fr")]
    assert al.blocks[1].orientation == 0


# --------------------------------------------------------------------------- other ouvrages


def test_g9_utf16_has_document_then_annexe(referentiel):
    raw = (referentiel / "g9" / "xml" / "document.xml").read_bytes()
    assert raw[:2] == b"\xff\xfe"
    g9 = load_ouvrage(referentiel / "g9")
    assert [d.name for d in g9.documents] == ["document", "annexe"]
    assert [Path(d.path).name for d in g9.documents] == ["document.xml", "annexe.xml"]
    assert g9.main is g9.documents[0]
    assert g9.continuous is False
    for doc in g9.documents:
        ouvrage = _ouvrage_el(_xml(Path(doc.path)))
        assert len(_nodes(doc, Alinea)) == len(list(ouvrage.iter("alinea"))) > 0
        assert [s.titre.numero for s in doc.iter_sections()] == [
            e.findtext("titre/numero").strip() for e in ouvrage.iter(*SECTION_TAGS)]
        xml_words = Counter(WORD.findall(" ".join(ouvrage.itertext())))
        assert Counter(WORD.findall(" ".join(_all_model_text(doc)))) == xml_words
        assert doc.warnings == []
    terms = {r.text for r in _runs(g9.main) if r.kind == "principal"}
    assert {"Écrehou", "Maîtresse Île"} <= terms
    assert g9.main.metadata.editeur is not None and g9.main.metadata.auteur is None


def test_lf1_is_continuous(referentiel):
    lf1 = load_ouvrage(referentiel / "lf1")
    assert lf1.continuous is True
    assert lf1.main.warnings == []


def test_continuous_flag_follows_the_file(referentiel, tmp_path):
    d = tmp_path / "lf1"
    shutil.copytree(referentiel / "lf1", d)
    (d / "idocument.donottouch.xml").unlink()
    assert load_ouvrage(d).continuous is False


# --------------------------------------------------------------------------- unusable input


def test_missing_document_xml_names_the_path(tmp_path):
    d = tmp_path / "x1"
    (d / "xml").mkdir(parents=True)
    (d / "xml" / "annexe.xml").write_text("<document/>", "utf-8")
    with pytest.raises(OuvrageError) as info:
        load_ouvrage(d)
    assert str(d / "xml" / "document.xml") in str(info.value)
    assert "missing" in str(info.value)


def test_not_a_directory_is_an_ouvrage_error(tmp_path):
    with pytest.raises(OuvrageError, match="not a directory"):
        load_ouvrage(tmp_path / "absent")


def test_unsafe_folder_name_is_refused(referentiel, tmp_path):
    d = tmp_path / "bad name"
    shutil.copytree(referentiel / "lf1", d)
    with pytest.raises(ValueError, match="invalid ouvrage key"):
        load_ouvrage(d)


@pytest.mark.parametrize("ouvrage", ["<ouvrage>\n  </ouvrage>", "<ouvrage>\n  <!-- vide -->\n</ouvrage>",
                                     "<ouvrage/>"])
def test_empty_ouvrage_names_file_and_line(tmp_path, ouvrage):
    p = _write_doc(tmp_path, '<md:metaData xmlns:md="metaData.xsd"/>\n' + ouvrage)
    with pytest.raises(XmlInputError) as info:
        load_document(p)
    err = info.value
    assert err.file == str(p)
    assert err.line == 4
    assert str(err).startswith(f"{p}:4")
    assert "ouvrage" in err.reason


def test_missing_ouvrage_element_is_an_error(tmp_path):
    p = _write_doc(tmp_path, '<md:metaData xmlns:md="metaData.xsd"/>')
    with pytest.raises(XmlInputError, match="no <ouvrage>") as info:
        load_document(p)
    assert info.value.file == str(p)


def test_root_other_than_document_is_an_error(tmp_path):
    p = tmp_path / "document.xml"
    p.write_text('<?xml version="1.0"?>\n\n<livre><ouvrage><chapitre/></ouvrage></livre>\n', "utf-8")
    with pytest.raises(XmlInputError) as info:
        load_document(p)
    assert info.value.file == str(p)
    assert info.value.line == 3
    assert "<livre>" in info.value.reason and "<document>" in info.value.reason


def test_malformed_document_is_an_xml_input_error_with_location(tmp_path):
    p = _write_doc(tmp_path, "<ouvrage>\n<chapitre>\n</ouvrage>")
    with pytest.raises(XmlInputError) as info:
        load_document(p)
    assert info.value.file == str(p)
    assert info.value.line == 5
    assert str(info.value).startswith(f"{p}:5:")


# --------------------------------------------------------------------------- anchors


@pytest.mark.parametrize("key", ["c99", "g9", "lf1"])
def test_anchors_are_unique_across_a_document(referentiel, key):
    ouv = load_ouvrage(referentiel / key)
    every = []
    for doc in ouv.documents:
        anchors = [n.anchor for n in _walk(doc.content) if isinstance(n, (Section, Illustration, TableauRef))]
        anchors += [r.anchor for r in _runs(doc) if r.kind == "principal"]
        assert all(anchors)
        assert len(set(anchors)) == len(anchors), Counter(anchors).most_common(3)
        assert all(re.fullmatch(r"[A-Za-z][\w.-]*", a) for a in anchors)
        every += anchors
    assert len(set(every)) == len(every)
