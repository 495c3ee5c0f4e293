"""Load an ouvrage from a local directory with the referentiel layout into the typed model.

Parsing goes through the hardened parser of `pdfgen_pipeline.xmlsafe`. Elements outside the
vocabulary keep their text and produce a warning naming them (with the line).
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from pdfgen_pipeline.ouvrage.keys import validate_ouvrage_key
from pdfgen_pipeline.ouvrage.model import (
    SECTION_TAGS,
    Adresse,
    Alinea,
    Block,
    Contact,
    Copyright,
    Document,
    Identite,
    Illustration,
    Inline,
    Liste,
    Metadata,
    Ouvrage,
    Party,
    Section,
    TableauRef,
    Texte,
    Titre,
    UnknownBlock,
    Warning_,
)
from pdfgen_pipeline.xmlsafe import XmlInputError, parse_xml_file

MAIN_DOCUMENT = "document.xml"
CONTINUOUS_FLAG = "idocument.donottouch.xml"

_WS = re.compile(r"[ \t\r\n]+")  # XML white space only: U+00A0 and U+202F are kept
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")  # anchors are written unescaped in the HTML: keep them plain
MAX_SHOWN = 80  # characters of an untrusted value or name quoted in a warning
# `scheme:` at the start of an address (a dot-free name: `www.shom.fr:8080` is a host)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+-]*):")

KNOWN_TTXT = {"", "exposant", "attention", "valorisation"}
KNOWN_TREFERENCE = {"ouvrage", "reglement", "mouillage", "carte"}
KNOWN_TLIEN = {"web", "mail", "texte", "illustration"}
KNOWN_TMAJ = {"", "edition", "nouveau", "modification"}


class OuvrageError(ValueError):
    """An ouvrage that cannot be rendered: `str()` names the file and what is wrong."""


def fold(text: str | None) -> str:
    """Fold XML indentation (runs of space, tab, newline) into one space; keep non-breaking spaces."""
    return _WS.sub(" ", text) if text else ""


def _meaningful(text: str | None) -> bool:
    """Text that is not just XML indentation (a lone non-breaking space is meaningful)."""
    return bool(text) and not _WS.fullmatch(text)


def _shown(value: str) -> str:
    """An untrusted value as quoted in a message: at most MAX_SHOWN characters."""
    return value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


class _DocumentReader:
    """Turns one parsed XML tree into a `Document`, collecting warnings."""

    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self._anchor_prefix = _NOT_ID.sub("_", name)  # the file name may hold '"', '<', '>'
        self.warnings: list[Warning_] = []
        self._ids: dict[str, int] = {}

    # -- helpers -----------------------------------------------------------------------
    def warn(self, code: str, message: str, el: etree._Element | None = None) -> None:
        line = el.sourceline if el is not None else None
        self.warnings.append(Warning_(code, message, str(self.path), line))

    def new_anchor(self, prefix: str) -> str:
        n = self._ids.get(prefix, 0) + 1
        self._ids[prefix] = n
        return f"{self._anchor_prefix}-{prefix}{n}"

    def unknown(self, el: etree._Element, where: str) -> None:
        self.warn("unknown-element", f"unknown element <{_shown(_local(el))}> in <{_shown(where)}>: its text is kept",
                  el)

    def check_value(self, el: etree._Element, attr: str, known: set[str]) -> str:
        value = el.get(attr, "")
        if value not in known:
            self.warn("unknown-value",
                      f'unknown value {attr}="{_shown(value)}" on <{_shown(_local(el))}>: rendered as plain', el)
        return value

    @staticmethod
    def text_of(el: etree._Element | None) -> str:
        return fold("".join(el.itertext())).strip() if el is not None else ""

    def child(self, el: etree._Element | None, name: str) -> etree._Element | None:
        if el is None:
            return None
        for c in el:
            if _local(c) == name:
                return c
        return None

    def child_text(self, el: etree._Element | None, name: str) -> str:
        return self.text_of(self.child(el, name))

    # -- metadata ----------------------------------------------------------------------
    def identite(self, el: etree._Element | None) -> Identite:
        return Identite(**{f: self.child_text(el, f) for f in ("nom", "prenom", "qualite", "fonction",
                                                                  "organisation", "abrev")})

    def adresse(self, el: etree._Element | None) -> Adresse:
        cs = self.child(el, "courseSpeciale")
        bp = self.child(el, "boitePostale")
        return Adresse(
            numero=self.child_text(el, "numero"), rue=self.child_text(el, "rue"),
            course_speciale=self.text_of(cs), t_course_speciale=cs.get("tCourseSpeciale", "") if cs is not None else "",
            boite_postale=self.text_of(bp), t_boite_postale=bp.get("tBoitePostale", "") if bp is not None else "",
            code_postal=self.child_text(el, "codePostal"), ville=self.child_text(el, "ville"),
            cedex=self.child_text(el, "cedex"), pays=self.child_text(el, "pays"),
        )

    def party(self, el: etree._Element | None) -> Party | None:
        if el is None:
            return None
        contact = self.child(el, "contact")
        site = self.child_text(contact, "site")
        scheme = _SCHEME.match(site)
        if scheme and scheme.group(1).lower() not in ("http", "https"):  # it becomes a link in the PDF
            self.warn("unsafe-url", f'md:site "{_shown(site)}": only http(s) addresses are linked; left out',
                      self.child(contact, "site"))
            site = ""
        return Party(self.identite(self.child(el, "identite")), self.adresse(self.child(el, "adresse")),
                     Contact(self.child_text(contact, "email"), site))

    def metadata(self, el: etree._Element | None) -> Metadata:
        meta = Metadata()
        if el is None:
            self.warn("no-metadata", "no <md:metaData>: cover and ISO metadata will be sparse")
            return meta
        meta.auteur = self.party(self.child(el, "auteur"))
        meta.editeur = self.party(self.child(el, "editeur"))
        pub = self.child(el, "publication")
        titres = self.child(pub, "titres")
        titre = None
        if titres is not None:
            candidates = [t for t in titres if _local(t) == "titre"]
            titre = next((t for t in candidates if t.get("tTitre") == "actuel"), candidates[0] if candidates else None)
        meta.titre = self.child_text(titre, "sTitre")
        meta.pays = self.child_text(titre, "pays")
        meta.region = self.child_text(titre, "region")
        maj = self.child(pub, "maj")
        meta.gan, meta.bat, meta.dms = (self.child_text(maj, n) for n in ("gan", "bat", "dms"))
        meta.maj_texte = self.child_text(maj, "texte")
        meta.serie = self.child_text(self.child(pub, "numerotation"), "serie")
        meta.date_edition = self.child_text(pub, "date")
        ouv = self.child(pub, "ouvrage")
        if ouv is not None:
            meta.t_ouvrage = ouv.get("tOuvrage", "")
        meta.nom_court = self.child_text(ouv, "nomCourt")
        meta.nom_long = self.child_text(ouv, "nomLong")
        meta.nota = self.child_text(ouv, "nota")
        cr = self.child(el, "copyright")
        if cr is not None:
            meta.copyright = Copyright(
                label=cr.get("label", ""), annee=self.child_text(cr, "annee"), pays=self.child_text(cr, "pays"),
                identite=self.identite(self.child(cr, "identite")), texte=self.child_text(cr, "texte"))
        meta.date_fichier = self.child_text(el, "date")
        return meta

    # -- inline ------------------------------------------------------------------------
    def texte(self, el: etree._Element) -> Texte:
        runs: list[Inline] = []
        if _meaningful(el.text):
            runs.append(Inline("txt", fold(el.text)))
        for c in el:
            if isinstance(c.tag, str):
                runs.append(self.inline(c))
            if _meaningful(c.tail):
                runs.append(Inline("txt", fold(c.tail)))
        return Texte(runs)

    def inline(self, c: etree._Element) -> Inline:
        tag = _local(c)
        bpn = c.get("bpn_id", "")
        if tag == "txt":
            t = self.check_value(c, "tTxt", KNOWN_TTXT)
            text = fold("".join(c.itertext()))
            if t in ("exposant", "attention", "valorisation"):
                return Inline(t, text, bpn_id=bpn)  # type: ignore[arg-type]
            return Inline("txt", text, bpn_id=bpn)
        if tag == "principal":
            return Inline("principal", fold("".join(c.itertext())), anchor=self.new_anchor("ix"),
                          idref=c.get("id", ""), bpn_id=bpn)
        if tag == "secondaire":
            return Inline("secondaire", fold("".join(c.itertext())), idref=c.get("idref", ""), bpn_id=bpn)
        if tag == "reference":
            kind = self.check_value(c, "tReference", KNOWN_TREFERENCE)
            return Inline("reference", fold("".join(c.itertext())), subkind=kind, bpn_id=bpn)
        if tag == "lien":
            kind = self.check_value(c, "tLien", KNOWN_TLIEN)
            if kind in ("texte", "illustration"):
                target = self.child_text(c, "numero") or self.text_of(c)
            else:
                target = self.child_text(c, "txt") or self.text_of(c)
            return Inline("lien", target, subkind=kind, target=target, bpn_id=bpn)
        self.unknown(c, "texte")
        return Inline("unknown", fold("".join(c.itertext())), subkind=tag)

    # -- blocks ------------------------------------------------------------------------
    def illustration(self, el: etree._Element) -> Illustration:
        orientation = el.get("orientation", "0").strip()
        if orientation not in ("0", "90"):
            self.warn("unknown-value", f'orientation="{_shown(orientation)}" (expected 0 or 90): printed upright',
                      el)
        return Illustration(
            numero=self.child_text(el, "numero"),
            caption=self._with_unknown(el, self.child_text(el, "txt"), {"numero", "txt", "source"}, "illustration"),
            source=self.child_text(el, "source"), t_illustration=el.get("tIllustration", ""),
            orientation=90 if orientation == "90" else 0, interactive=el.get("interactive", "") == "oui",
            bpn_id=el.get("bpn_id", ""), anchor=self.new_anchor("fig"), line=el.sourceline)

    def tableau(self, el: etree._Element) -> TableauRef:
        return TableauRef(numero=self.child_text(el, "numero"),
                          caption=self._with_unknown(el, self.child_text(el, "txt"), {"numero", "txt"}, "tableau"),
                          bpn_id=el.get("bpn_id", ""), anchor=self.new_anchor("tab"), line=el.sourceline)

    def alinea(self, el: etree._Element) -> Alinea:
        al = Alinea(t_maj=self.check_value(el, "tMaj", KNOWN_TMAJ), t_date=el.get("tDate", ""),
                    bpn_id=el.get("bpn_id", ""))
        for c in el:
            tag = _local(c)
            if not tag:
                continue
            block: Block | None = None
            if tag == "nmrAlinea":
                al.nmr = self.text_of(c)
            elif tag == "texte":
                block = self.texte(c)
            elif tag == "liste":
                block = Liste([self.texte(t) if _local(t) == "texte" else self._unknown_texte(t, "liste") for t in c
                               if isinstance(t.tag, str)])
            elif tag == "illustration":
                block = self.illustration(c)
            elif tag == "tableau":
                block = self.tableau(c)
            else:
                self.unknown(c, "alinea")
                block = UnknownBlock(tag, self.text_of(c))
            if block is not None:
                al.blocks.append(block)
        return al

    def _with_unknown(self, el: etree._Element, caption: str, known: set[str], where: str) -> str:
        """`caption` followed by the text of the children of `el` not in `known` (each one warned)."""
        extra = []
        for c in el:
            tag = _local(c)
            if tag and tag not in known:
                self.unknown(c, where)
                if text := self.text_of(c):
                    extra.append(text)
        return " ".join([caption, *extra]) if caption else " ".join(extra)

    def _unknown_texte(self, el: etree._Element, where: str) -> Texte:
        self.unknown(el, where)
        return Texte([Inline("unknown", self.text_of(el), subkind=_local(el))])

    def titre(self, el: etree._Element | None) -> Titre:
        if el is None:
            return Titre()
        texte_el = self.child(el, "texte")
        texte = self.texte(texte_el) if texte_el is not None else Texte()
        for c in el:
            if _local(c) not in ("nmrAlinea", "numero", "texte", ""):
                self.unknown(c, "titre")
                texte.runs.append(Inline("unknown", " " + self.text_of(c), subkind=_local(c)))
        return Titre(numero=self.child_text(el, "numero"), texte=texte, nmr=self.child_text(el, "nmrAlinea"),
                     t_maj=self.check_value(el, "tMaj", KNOWN_TMAJ), t_date=el.get("tDate", ""))

    def section(self, el: etree._Element, level: int) -> Section:
        sec = Section(tag=_local(el), level=level, bpn_id=el.get("bpn_id", ""), anchor=self.new_anchor("t"))
        seen_titre = False
        for c in el:
            tag = _local(c)
            if not tag:
                continue
            if tag == "titre" and not seen_titre:
                sec.titre = self.titre(c)
                seen_titre = True
            elif tag in SECTION_TAGS:
                sec.children.append(self.section(c, level + 1))
            elif tag == "alinea":
                sec.children.append(self.alinea(c))
            elif tag == "illustration":
                sec.children.append(self.illustration(c))
            else:
                self.unknown(c, sec.tag)
                sec.children.append(UnknownBlock(tag, self.text_of(c)))
        if not seen_titre:
            self.warn("missing-title", f"<{sec.tag}> without <titre>", el)
        return sec

    def document(self, root: etree._Element) -> Document:
        if _local(root) != "document":
            raise XmlInputError(self.path, f"root element is <{_shown(_local(root))}>, expected <document>",
                                root.sourceline)
        meta_el = None
        ouvrage_el = None
        unknown: list[UnknownBlock] = []  # printed before the content
        for c in root:
            tag = _local(c)
            if tag == "metaData":
                meta_el = c
            elif tag == "ouvrage":
                ouvrage_el = c
            elif tag:
                self.unknown(c, "document")
                unknown.append(UnknownBlock(tag, self.text_of(c)))
        doc = Document(name=self.name, path=str(self.path), metadata=self.metadata(meta_el), content=list(unknown))
        if ouvrage_el is None:
            raise XmlInputError(self.path, "no <ouvrage> element: nothing to print", root.sourceline)
        for c in ouvrage_el:
            tag = _local(c)
            if not tag:
                continue
            if tag == "chapitre":
                doc.content.append(self.section(c, 1))
            elif tag in SECTION_TAGS:
                self.warn("unexpected-level", f"<{tag}> directly under <ouvrage>: treated as a chapter", c)
                doc.content.append(self.section(c, 1))
            elif tag == "illustration":
                doc.content.append(self.illustration(c))
            elif tag == "alinea":
                doc.content.append(self.alinea(c))
            else:
                self.unknown(c, "ouvrage")
                doc.content.append(UnknownBlock(tag, self.text_of(c)))
        if len(doc.content) == len(unknown):
            raise XmlInputError(self.path, "empty <ouvrage>: no chapter, alinea or illustration to print",
                                ouvrage_el.sourceline)
        doc.warnings = self.warnings
        return doc


def load_document(path: str | Path, name: str | None = None) -> Document:
    """Parse one XML document of an ouvrage into a `Document` (raises `XmlInputError`)."""
    p = Path(path)
    tree = parse_xml_file(p)
    return _DocumentReader(p, name or p.stem).document(tree.getroot())


def list_documents(ouvrage_dir: Path) -> list[Path]:
    """`xml/document.xml` first, then the other `xml/*.xml` in name order (dot-files ignored)."""
    xml_dir = ouvrage_dir / "xml"
    main = xml_dir / MAIN_DOCUMENT
    if not main.is_file():
        if main.exists():  # a directory, a FIFO (never opened: reading it would block)...
            raise OuvrageError(f"{main}: not a regular file: an ouvrage needs xml/{MAIN_DOCUMENT}")
        raise OuvrageError(f"{main}: missing: an ouvrage needs xml/{MAIN_DOCUMENT}")
    root = ouvrage_dir.resolve()

    def inside(p: Path) -> Path:  # a symbolic link (of the file or of xml/) leaving the ouvrage is refused
        if not p.resolve().is_relative_to(root):
            raise OuvrageError(f"{p}: symbolic link pointing outside the ouvrage folder: refused")
        return p

    inside(main)  # before xml/ is listed
    others = sorted(inside(p) for p in xml_dir.glob("*.xml")
                    if p.name != MAIN_DOCUMENT and not p.name.startswith(".") and p.is_file())
    return [main, *others]


def load_ouvrage(ouvrage_dir: str | Path, key: str | None = None) -> Ouvrage:
    """Load every document of the ouvrage in `ouvrage_dir` (its name is the key unless given)."""
    d = Path(ouvrage_dir)
    if not d.is_dir():
        raise OuvrageError(f"{d}: not a directory")
    k = validate_ouvrage_key(key or d.resolve().name)
    docs = [load_document(p) for p in list_documents(d)]
    return Ouvrage(key=k, root=str(d), documents=docs, continuous=(d / CONTINUOUS_FLAG).is_file())
