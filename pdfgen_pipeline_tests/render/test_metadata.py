"""ISO 19115/19139 metadata of an ouvrage: filename, well-formedness, OWSLib round trip."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest
from lxml import etree
from owslib.iso import MD_Metadata

from pdfgen_pipeline.ouvrage.model import Adresse, Contact, Copyright, Identite, Metadata, Party
from pdfgen_pipeline.render.metadata import build_iso_metadata, metadata_filename

NS = {"gmd": "http://www.isotc211.org/2005/gmd", "gco": "http://www.isotc211.org/2005/gco"}
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "c22"

ORG = "Service hydrographique et océanographique de la marine"
TITRE = "Du cap de La Hague à la pointe de Penmarc’h"
COPYRIGHT_TEXT = (
    "Cet ouvrage contient des éléments soumis au copyright, provenant du Shom ou d’autres organismes. "
    "Toute reproduction ou adaptation sous quelque forme que ce soit même partielle est interdite."
)


def _address() -> Adresse:
    return Adresse(
        numero="13",
        rue="rue du Chatellier",
        course_speciale="92803",
        t_course_speciale="CS",
        boite_postale="30316",
        t_boite_postale="BP",
        code_postal="29228",
        ville="Brest",
        cedex="2",
        pays="France",
    )


def c22_metadata() -> Metadata:
    """Values of the real C2.2 `md:metaData`."""
    contact = Contact(email="webmaster@shom.fr", site="www.shom.fr")
    return Metadata(
        auteur=Party(
            identite=Identite(
                nom="Kerléguer",
                prenom="Laurent",
                fonction="directeur général du Shom",
                organisation=ORG,
                abrev="Shom",
            ),
            adresse=_address(),
            contact=contact,
        ),
        editeur=Party(
            identite=Identite(nom="Shom", organisation=ORG, abrev="Shom"), adresse=_address(), contact=contact
        ),
        titre=TITRE,
        pays="France",
        region="(côtes Nord et Ouest)",
        gan="2023-01-11",
        bat="2018-06-20",
        dms="2018-07-04",
        maj_texte="Cette version annule et remplace la précédente",
        serie="c22",
        date_edition="2018-06-20",
        t_ouvrage="livre",
        nom_court="in",
        nom_long="Instructions nautiques",
        nota="Avant de se servir de cet ouvrage lire les avis importants qui précèdent la table des matières",
        copyright=Copyright(
            label="Tous droits réservés",
            annee="2013",
            pays="France",
            identite=Identite(organisation=ORG, abrev="Shom"),
            texte=COPYRIGHT_TEXT,
        ),
        date_fichier="2023-01-10",
    )


def _parse(xml: bytes) -> MD_Metadata:
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return MD_Metadata(etree.fromstring(xml))


def _children(el: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in el]


def _in_order(names: list[str], sequence: list[str]) -> bool:
    """True when every name is in `sequence` and they appear in its order."""
    positions = [sequence.index(n) for n in names]
    return positions == sorted(positions)


# --------------------------------------------------------------------------- filename


def test_filename_of_c22() -> None:
    assert metadata_filename(c22_metadata(), "c22") == "OUVNAUT_IN_C22.xml"


@pytest.mark.parametrize(
    ("meta", "key", "expected"),
    [
        (Metadata(), "c22", "OUVNAUT_C22.xml"),  # nothing: the key stands in for the serie
        (Metadata(nom_court="in"), "c22", "OUVNAUT_IN_C22.xml"),
        (Metadata(serie="g4"), "whatever", "OUVNAUT_G4.xml"),
        (Metadata(nom_court="l. d/f", serie="é 9"), "k", "OUVNAUT_L_D_F_E_9.xml"),
        (Metadata(), "../..", "OUVNAUT_OUVRAGE.xml"),
    ],
)
def test_filename_fallbacks_and_sanitizing(meta: Metadata, key: str, expected: str) -> None:
    name = metadata_filename(meta, key)
    assert name == expected
    assert re.fullmatch(r"OUVNAUT_[A-Z0-9_-]+\.xml", name)


# --------------------------------------------------------------------------- content


def test_c22_round_trip_through_owslib() -> None:
    xml = build_iso_metadata(c22_metadata(), "c22", page_count=412)
    md = _parse(xml)

    assert md.identifier == "FR-SHOM-OUVNAUT-IN-C22"
    assert md.languagecode == "fre"
    assert md.charset == "utf8"
    assert md.datestamp == "2023-01-10"
    assert md.stdname and "19139" in md.stdname

    (contact,) = md.contact
    assert contact.organization == ORG
    assert contact.email == "webmaster@shom.fr"
    assert contact.role == "publisher"
    assert contact.onlineresource.url == "https://www.shom.fr"
    assert contact.postcode == "29228"
    assert contact.city == "Brest Cedex 2"

    (ident,) = md.identification
    assert ident.title == f"Instructions nautiques C22 — {TITRE}"
    assert ident.alternatetitle == "IN C22"
    assert {(d.type, d.date) for d in ident.date} == {
        ("publication", "2018-06-20"),
        ("revision", "2023-01-11"),
        ("creation", "2018-06-20"),
    }
    assert ident.edition and "2018-06-20" in ident.edition
    assert ident.resourcelanguagecode == ["fre"]
    assert TITRE in ident.abstract
    assert "France (côtes Nord et Ouest)" in ident.abstract
    assert "avis importants" in ident.abstract
    assert set(ident.topiccategory) == {"transportation", "oceans"}
    keywords = {k.name for mk in ident.keywords for k in mk.keywords}
    assert {"France", "côtes Nord et Ouest", "Instructions nautiques"} <= keywords
    assert [p.organization for p in ident.publisher] == [ORG]
    assert ident.uselimitation == [COPYRIGHT_TEXT]
    assert ident.accessconstraints == ["copyright"]
    assert COPYRIGHT_TEXT in ident.otherconstraints
    assert any("© 2013" in c and "Tous droits réservés" in c for c in ident.otherconstraints)
    assert "412" in ident.supplementalinformation

    assert md.distribution.format == "PDF"
    assert [o.url for o in md.distribution.online] == ["document.pdf"]


def test_citation_series_and_responsible_parties() -> None:
    root = etree.fromstring(build_iso_metadata(c22_metadata(), "c22"))
    citation = root.find("gmd:identificationInfo/gmd:MD_DataIdentification/gmd:citation/gmd:CI_Citation", NS)
    series = citation.find("gmd:series/gmd:CI_Series", NS)
    assert series.findtext("gmd:name/gco:CharacterString", namespaces=NS) == "Instructions nautiques"
    assert series.findtext("gmd:issueIdentification/gco:CharacterString", namespaces=NS) == "C22"
    roles = {
        rp.find("gmd:role/gmd:CI_RoleCode", NS).get("codeListValue"): rp.findtext(
            "gmd:individualName/gco:CharacterString", namespaces=NS
        )
        for rp in citation.findall("gmd:citedResponsibleParty/gmd:CI_ResponsibleParty", NS)
    }
    # the author is a person; the publisher's `nom` ("Shom") is its short name, not a person
    assert roles == {"author": "Laurent Kerléguer", "publisher": None}


def test_element_order_follows_iso19139_sequences() -> None:
    root = etree.fromstring(build_iso_metadata(c22_metadata(), "c22", thumbnail="vignette.jpg"))
    md_metadata = [
        "fileIdentifier",
        "language",
        "characterSet",
        "parentIdentifier",
        "hierarchyLevel",
        "hierarchyLevelName",
        "contact",
        "dateStamp",
        "metadataStandardName",
        "metadataStandardVersion",
        "dataSetURI",
        "locale",
        "spatialRepresentationInfo",
        "referenceSystemInfo",
        "metadataExtensionInfo",
        "identificationInfo",
        "contentInfo",
        "distributionInfo",
        "dataQualityInfo",
    ]
    data_identification = [
        "citation",
        "abstract",
        "purpose",
        "credit",
        "status",
        "pointOfContact",
        "resourceMaintenance",
        "graphicOverview",
        "resourceFormat",
        "descriptiveKeywords",
        "resourceSpecificUsage",
        "resourceConstraints",
        "aggregationInfo",
        "spatialRepresentationType",
        "spatialResolution",
        "language",
        "characterSet",
        "topicCategory",
        "environmentDescription",
        "extent",
        "supplementalInformation",
    ]
    citation = [
        "title",
        "alternateTitle",
        "date",
        "edition",
        "editionDate",
        "identifier",
        "citedResponsibleParty",
        "presentationForm",
        "series",
        "otherCitationDetails",
        "collectiveTitle",
        "ISBN",
        "ISSN",
    ]
    legal = ["useLimitation", "accessConstraints", "useConstraints", "otherConstraints"]
    ident = root.find("gmd:identificationInfo/gmd:MD_DataIdentification", NS)
    for el, sequence in (
        (root, md_metadata),
        (ident, data_identification),
        (ident.find("gmd:citation/gmd:CI_Citation", NS), citation),
        (ident.find("gmd:resourceConstraints/gmd:MD_LegalConstraints", NS), legal),
    ):
        assert _in_order(_children(el), sequence), _children(el)
    assert "graphicOverview" in _children(ident)


def test_values_are_escaped() -> None:
    title = 'Baie <des> "Anges" & l\'île </gco:CharacterString>'
    meta = c22_metadata()
    meta.titre = title
    meta.nota = "a < b && c > d"
    url = 'https://example.org/get?ouvrage=c22&format=pdf&x="y"'
    xml = build_iso_metadata(meta, "c22", pdf_url=url)
    assert b"&lt;des&gt;" in xml and b"&amp; l" in xml
    md = _parse(xml)
    assert md.identification[0].title == f"Instructions nautiques C22 — {title}"
    assert "a < b && c > d" in md.identification[0].abstract
    assert [o.url for o in md.distribution.online] == [url]
    assert md.distribution.online[0].protocol == "WWW:DOWNLOAD-1.0-http--download"


def test_control_characters_do_not_break_the_document() -> None:
    meta = c22_metadata()
    meta.titre = "Titre\x01 avec\x0b contrôle"
    md = _parse(build_iso_metadata(meta, "c22"))
    assert md.identification[0].title == "Instructions nautiques C22 — Titre avec contrôle"


def test_everything_missing() -> None:
    generated = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    xml = build_iso_metadata(Metadata(), "c22", generated_at=generated)
    assert b"None" not in xml
    root = etree.fromstring(xml)  # well-formed
    md = MD_Metadata(root)
    assert md.identifier == "FR-SHOM-OUVNAUT-C22"
    assert md.datestamp == "2024-05-06"
    assert md.contact == []
    assert root.find("gmd:contact", NS).get(f"{{{NS['gco']}}}nilReason") == "missing"
    (ident,) = md.identification
    assert ident.title == "c22"
    assert ident.abstract  # never empty
    assert ident.date == []
    assert ident.edition is None
    assert ident.uselimitation == [] and ident.otherconstraints == []
    assert ident.keywords == []
    assert md.distribution.format == "PDF"
    # no empty CharacterString anywhere: missing values are omitted, not emitted blank
    assert all((cs.text or "").strip() for cs in root.iter(f"{{{NS['gco']}}}CharacterString"))


def test_none_values_are_never_printed() -> None:
    meta = Metadata(editeur=Party(identite=Identite(organisation=None)))  # type: ignore[arg-type]
    meta.titre = None  # type: ignore[assignment]
    xml = build_iso_metadata(meta, "g4", page_count=None, generated_at=dt.datetime(2024, 1, 2))
    assert b"None" not in xml
    assert MD_Metadata(etree.fromstring(xml)).identifier == "FR-SHOM-OUVNAUT-G4"


def test_garbage_dates_are_not_emitted_as_dates(caplog: pytest.LogCaptureFixture) -> None:
    meta = c22_metadata()
    meta.date_edition = "juin 2018"
    meta.gan = "2023-02-30"  # not a real day
    meta.date_fichier = "hier"
    generated = dt.datetime(2024, 5, 6, 7, 8, 9)
    with caplog.at_level(logging.WARNING, logger="pdfgen_pipeline.render.metadata"):
        xml = build_iso_metadata(meta, "c22", generated_at=generated)
    root = etree.fromstring(xml)
    dates = [d.text for d in root.iter(f"{{{NS['gco']}}}Date")]
    assert "juin 2018" not in dates and "2023-02-30" not in dates and "hier" not in dates
    md = MD_Metadata(root)
    assert md.datestamp == "2024-05-06"
    ident = md.identification[0]
    assert [(d.type, d.date) for d in ident.date] == [("creation", "2018-06-20")]  # bat is still valid
    assert "juin 2018" in ident.supplementalinformation  # kept as text, not lost
    assert "2023-02-30" in ident.supplementalinformation
    assert "juin 2018" in caplog.text and "2023-02-30" in caplog.text


def test_pdf_name_and_invalid_page_count() -> None:
    xml = build_iso_metadata(c22_metadata(), "c22", pdf_name="annexe 1.pdf", page_count=0)
    md = _parse(xml)
    (online,) = md.distribution.online
    assert online.url == "annexe%201.pdf"
    assert online.name == "annexe 1.pdf"
    assert online.protocol is None  # a relative name is not an http download
    assert "Nombre de pages" not in md.identification[0].supplementalinformation


def test_output_is_deterministic() -> None:
    meta = c22_metadata()
    assert build_iso_metadata(meta, "c22") == build_iso_metadata(meta, "c22")


@pytest.mark.corpus
@pytest.mark.skipif(not (CORPUS / "xml" / "document.xml").is_file(), reason="no ../shared/corpus/c22")
def test_real_c22() -> None:
    from pdfgen_pipeline.ouvrage.loader import load_document

    meta = load_document(CORPUS / "xml" / "document.xml").metadata
    assert metadata_filename(meta, "c22") == "OUVNAUT_IN_C22.xml"
    md = _parse(build_iso_metadata(meta, "c22"))
    assert md.identification[0].title == f"Instructions nautiques C22 — {TITRE}"
    assert md.contact[0].organization == ORG
