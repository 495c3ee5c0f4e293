"""ISO 19115/19139 metadata record of one generated ouvrage (`OUVNAUT_<NOMCOURT>_<SERIE>.xml`).

Pure library: a `Metadata` (from `md:metaData`) in, UTF-8 XML bytes out, rendered with the
Jinja2 template `templates/iso19139.xml.j2` (autoescaped). Every missing value is omitted
(or given a `gco:nilReason` where the schema requires the element); dates that are not
ISO `YYYY-MM-DD` are never emitted as `gco:Date`: they are logged and kept as text in
`supplementalInformation`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
from lxml import etree

from pdfgen_pipeline.ouvrage.model import Copyright, Identite, Metadata, Party

log = logging.getLogger(__name__)

TEMPLATE_NAME = "iso19139.xml.j2"
FILE_ID_PREFIX = "FR-SHOM-OUVNAUT"

_INVALID_XML_CHARS = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FOLD = re.compile(r"[ \t\r\n]+")  # not \xa0: non-breaking spaces are kept
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^mailto:", re.IGNORECASE)

# --------------------------------------------------------------------------- small helpers


def _clean(value: object) -> str:
    """A text value ready for XML: None -> "", invalid XML characters dropped, whitespace folded."""
    if value is None:
        return ""
    return _FOLD.sub(" ", _INVALID_XML_CHARS.sub("", str(value))).strip()


def _token(value: object) -> str:
    """Upper-case ASCII token limited to [A-Z0-9_-] (accents stripped, other characters -> `_`)."""
    text = unicodedata.normalize("NFKD", _clean(value)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Z0-9_-]+", "_", text.upper())
    return re.sub(r"_{2,}", "_", text).strip("_-")


def _iso_date(value: object) -> str | None:
    """`value` if it is a real ISO date `YYYY-MM-DD` (surrounding blanks allowed), else None."""
    text = _clean(value)
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return None
    return text


def _name_parts(meta: Metadata, ouvrage_key: str) -> list[str]:
    """The tokens naming the ouvrage: [NOMCOURT, SERIE], with the key standing in for the serie."""
    nom_court = _token(meta.nom_court)
    serie = _token(meta.serie) or _token(ouvrage_key)
    return [p for p in (nom_court, serie) if p] or ["OUVRAGE"]


def _url(value: str) -> str:
    """A web address as found in the source (`www.shom.fr`) made absolute (`https://www.shom.fr`)."""
    if not value or _HAS_SCHEME.match(value):
        return value
    return "https://" + value.lstrip("/")


def _sentence(text: str) -> str:
    """`text` ending with a full stop (unless it already ends with punctuation)."""
    return text if not text or text[-1] in ".!?…" else text + "."


def _unique(values: list[str]) -> list[str]:
    """Non-empty values, duplicates (case-insensitive) removed, order kept."""
    seen: set[str] = set()
    out = []
    for v in values:
        if v and v.casefold() not in seen:
            seen.add(v.casefold())
            out.append(v)
    return out


# --------------------------------------------------------------------------- view model


@dataclass
class _PartyView:
    individual: str = ""
    organisation: str = ""
    position: str = ""
    delivery_points: list[str] = field(default_factory=list)
    city: str = ""
    postal_code: str = ""
    country: str = ""
    email: str = ""
    site_url: str = ""
    site_name: str = ""
    role: str = ""

    @property
    def has_contact_info(self) -> bool:
        return bool(self.delivery_points or self.city or self.postal_code or self.country or self.email)


def _individual_name(i: Identite) -> str:
    """`prenom nom` when it names a person (not the organisation's short name repeated in `nom`)."""
    nom, prenom = _clean(i.nom), _clean(i.prenom)
    if not prenom and nom in (_clean(i.abrev), _clean(i.organisation)):
        nom = ""
    return " ".join(p for p in (prenom, nom) if p)


def _party(p: Party | None, role: str) -> _PartyView | None:
    """A CI_ResponsibleParty view of `md:auteur` / `md:editeur`, or None when it holds nothing."""
    if p is None:
        return None
    i, a, c = p.identite, p.adresse, p.contact
    street = " ".join(x for x in (_clean(a.numero), _clean(a.rue)) if x)
    delivery = [street] if street else []
    if _clean(a.course_speciale):
        delivery.append(f"{_clean(a.t_course_speciale) or 'CS'} {_clean(a.course_speciale)}")
    if _clean(a.boite_postale):
        delivery.append(f"{_clean(a.t_boite_postale) or 'BP'} {_clean(a.boite_postale)}")
    city = _clean(a.ville)
    if _clean(a.cedex):
        city = f"{city} Cedex {_clean(a.cedex)}".strip()
    site = _clean(c.site)
    view = _PartyView(
        individual=_individual_name(i),
        organisation=_clean(i.organisation) or _clean(i.abrev),
        position=_clean(i.fonction),
        delivery_points=delivery,
        city=city,
        postal_code=_clean(a.code_postal),
        country=_clean(a.pays),
        email=_clean(c.email),
        site_url=_url(site),
        site_name=site,
        role=role,
    )
    if not (view.individual or view.organisation or view.position or view.has_contact_info or site):
        return None
    return view


def _copyright_notice(c: Copyright) -> str:
    """`© 2013 Organisation (Abrev), France — Tous droits réservés`, from what is there."""
    org, abrev = _clean(c.identite.organisation), _clean(c.identite.abrev)
    holder = f"{org} ({abrev})" if org and abrev and abrev not in org else (org or abrev)
    holder = ", ".join(x for x in (holder, _clean(c.pays)) if x)
    head = " ".join(x for x in ("©", _clean(c.annee), holder) if x)
    if head == "©":
        head = ""
    return " — ".join(x for x in (head, _clean(c.label)) if x)


def _context(
    meta: Metadata,
    ouvrage_key: str,
    *,
    pdf_name: str,
    pdf_url: str | None,
    page_count: int | None,
    generated_at: dt.datetime | None,
    thumbnail: str | None,
) -> dict[str, object]:
    """Everything the template shows, as clean strings, lists and views (no None values)."""
    key = _clean(ouvrage_key)
    nom_long, nom_court, serie = _clean(meta.nom_long), _clean(meta.nom_court), _clean(meta.serie)
    titre, pays, region = _clean(meta.titre), _clean(meta.pays), _clean(meta.region)
    serie_label = serie.upper()
    notes: list[str] = []  # supplementalInformation lines

    def checked_date(label: str, value: object) -> str | None:
        raw = _clean(value)
        date = _iso_date(raw)
        if raw and date is None:
            log.warning(
                "ISO metadata of %s: %s %r is not an ISO date (YYYY-MM-DD), not emitted as a date",
                key or "?",
                label,
                raw,
            )
            notes.append(f"{label} (non normalisée) : {raw}")
        return date

    d_edition = checked_date("Date d’édition", meta.date_edition)
    d_gan = checked_date("Dernière correction (GAN)", meta.gan)
    d_bat = checked_date("Bon à tirer", meta.bat)
    d_dms = checked_date("Date de mise en service", meta.dms)
    d_file = checked_date("Date du fichier", meta.date_fichier)

    head = " ".join(x for x in (nom_long or nom_court.upper(), serie_label) if x)
    title = " — ".join(x for x in (head, titre) if x) or key or "Ouvrage"
    short_code = " ".join(x for x in (nom_court.upper(), serie_label) if x)
    alternate_titles = [t for t in _unique([short_code, titre, head]) if t != title]
    zone = " ".join(x for x in (pays, region) if x)

    typed_dates = ((d_bat, "creation"), (d_edition, "publication"), (d_gan, "revision"))
    dates = [(d, kind) for d, kind in typed_dates if d]

    edition_parts = []
    if d_edition:
        edition_parts.append(f"Édition du {d_edition}")
    if d_gan:
        edition_parts.append(f"à jour des corrections du GAN du {d_gan}")
    edition = ", ".join(edition_parts)

    abstract_parts = [_sentence(title)]
    if zone:
        abstract_parts.append(_sentence(f"Zone couverte : {zone}"))
    if edition:
        abstract_parts.append(_sentence(edition[0].upper() + edition[1:]))
    if _clean(meta.nota):
        abstract_parts.append(_sentence(_clean(meta.nota)))
    abstract = " ".join(abstract_parts)

    region_kw = region[1:-1].strip() if region.startswith("(") and region.endswith(")") else region
    place_keywords = _unique([pays, region_kw])
    theme_keywords = _unique([nom_long, short_code])

    editeur = _party(meta.editeur, "publisher")
    auteur = _party(meta.auteur, "author")
    metadata_contact = editeur or auteur
    cited = [p for p in (auteur, editeur) if p]

    constraints = None
    if meta.copyright is not None:
        notice, texte = _copyright_notice(meta.copyright), _clean(meta.copyright.texte)
        other = _unique([notice, texte])
        if other:
            constraints = {"use_limitations": _unique([texte]), "other": other}

    if d_dms:
        notes.insert(0, f"Date de mise en service : {d_dms}")
    maj_texte = _clean(meta.maj_texte)
    if maj_texte:
        notes.insert(0, _sentence(maj_texte))
    pages = page_count if isinstance(page_count, int) and not isinstance(page_count, bool) else None
    if pages is not None and pages > 0:
        notes.append(f"Nombre de pages : {pages}")
    else:
        pages = None

    date_stamp = d_file or (generated_at or dt.datetime.now(dt.UTC)).date().isoformat()

    pdf_name = _clean(pdf_name) or "document.pdf"
    pdf_link = _clean(pdf_url) if pdf_url else quote(pdf_name, safe="/._-~")
    pdf_description = "Ouvrage au format PDF" + (f" ({pages} pages)" if pages else "")

    return {
        "file_identifier": "-".join([FILE_ID_PREFIX, *_name_parts(meta, ouvrage_key)]),
        "metadata_contact": metadata_contact,
        "date_stamp": date_stamp,
        "title": title,
        "alternate_titles": alternate_titles,
        "dates": dates,
        "edition": edition,
        "edition_date": d_edition,
        "cited_parties": cited,
        "point_of_contact": editeur,
        "series_name": nom_long,
        "series_issue": serie_label,
        "abstract": abstract,
        "thumbnail": _clean(thumbnail),
        "place_keywords": place_keywords,
        "theme_keywords": theme_keywords,
        "constraints": constraints,
        "zone": zone,
        "supplemental": "\n".join(notes),
        "pdf_link": pdf_link,
        "pdf_is_url": bool(pdf_url and _HAS_SCHEME.match(_clean(pdf_url))),
        "pdf_name": pdf_name,
        "pdf_description": pdf_description,
    }


# --------------------------------------------------------------------------- public API


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=lambda v: "" if v is None else v,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def metadata_filename(meta: Metadata, ouvrage_key: str) -> str:
    """Name of the published metadata file, e.g. `OUVNAUT_IN_C22.xml`.

    nomCourt and serie upper-cased and limited to [A-Z0-9_-]; a missing serie is replaced by
    the ouvrage key, a missing nomCourt is left out (`OUVNAUT_C22.xml`).
    """
    return "_".join(["OUVNAUT", *_name_parts(meta, ouvrage_key)]) + ".xml"


def build_iso_metadata(
    meta: Metadata,
    ouvrage_key: str,
    *,
    pdf_name: str = "document.pdf",
    pdf_url: str | None = None,
    page_count: int | None = None,
    generated_at: dt.datetime | None = None,
    thumbnail: str | None = None,
) -> bytes:
    """The ISO 19115/19139 record (`gmd:MD_Metadata`) of an ouvrage, as UTF-8 XML bytes.

    `pdf_url` (else `pdf_name`) is the download link; `page_count` goes to supplementalInformation;
    `generated_at` is the dateStamp when the source has no `md:metaData/md:date`; `thumbnail`
    (e.g. "vignette.jpg"), when given, becomes the graphicOverview.
    """
    ctx = _context(
        meta,
        ouvrage_key,
        pdf_name=pdf_name,
        pdf_url=pdf_url,
        page_count=page_count,
        generated_at=generated_at,
        thumbnail=thumbnail,
    )
    text = _environment().get_template(TEMPLATE_NAME).render(**ctx)
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(text.encode("utf-8"), parser)  # a template bug fails here, not downstream
    etree.indent(root, space="  ")
    body = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
