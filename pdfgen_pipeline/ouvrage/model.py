"""Typed document model of an ouvrage (reference: shared/docs/ouvrage-format.md, section 3).

Plain dataclasses, no behaviour beyond small derived properties: the loader builds them,
the renderers read them. Text is kept as it is in the source, with XML indentation folded
to single spaces and non-breaking spaces preserved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# --------------------------------------------------------------------------- metadata


@dataclass
class Identite:
    """`md:identite`: a person or an organisation."""

    nom: str = ""
    prenom: str = ""
    qualite: str = ""
    fonction: str = ""
    organisation: str = ""
    abrev: str = ""


@dataclass
class Adresse:
    """`md:adresse`: a postal address."""

    numero: str = ""
    rue: str = ""
    course_speciale: str = ""
    t_course_speciale: str = ""
    boite_postale: str = ""
    t_boite_postale: str = ""
    code_postal: str = ""
    ville: str = ""
    cedex: str = ""
    pays: str = ""

    def lines(self) -> list[str]:
        """The address as printed, line by line (French postal order)."""
        out = []
        street = " ".join(p for p in (self.numero, self.rue) if p)
        if street:
            out.append(street)
        if self.course_speciale:
            out.append(f"{self.t_course_speciale or 'CS'} {self.course_speciale}")
        if self.boite_postale:
            out.append(f"{self.t_boite_postale or 'BP'} {self.boite_postale}")
        city = " ".join(p for p in (self.code_postal, self.ville) if p)
        if self.cedex:
            city = f"{city} Cedex {self.cedex}".strip()
        if city:
            out.append(city)
        if self.pays:
            out.append(self.pays)
        return out


@dataclass
class Contact:
    """`md:contact`."""

    email: str = ""
    site: str = ""


@dataclass
class Party:
    """`md:auteur` or `md:editeur`."""

    identite: Identite = field(default_factory=Identite)
    adresse: Adresse = field(default_factory=Adresse)
    contact: Contact = field(default_factory=Contact)

    @property
    def display_name(self) -> str:
        """Organisation, else first name + name, else abbreviation."""
        i = self.identite
        person = " ".join(p for p in (i.prenom, i.nom) if p)
        return i.organisation or person or i.abrev


@dataclass
class Copyright:
    """`md:copyright`."""

    label: str = ""
    annee: str = ""
    pays: str = ""
    identite: Identite = field(default_factory=Identite)
    texte: str = ""


@dataclass
class Metadata:
    """`md:metaData`: everything may be missing (empty strings)."""

    auteur: Party | None = None
    editeur: Party | None = None
    titre: str = ""  # md:titre[@tTitre="actuel"]/md:sTitre
    pays: str = ""
    region: str = ""
    gan: str = ""  # date of the last weekly correction (Groupe d'Avis aux Navigateurs)
    bat: str = ""
    dms: str = ""
    maj_texte: str = ""
    serie: str = ""
    date_edition: str = ""  # md:publication/md:date
    t_ouvrage: str = ""
    nom_court: str = ""
    nom_long: str = ""
    nota: str = ""
    copyright: Copyright | None = None
    date_fichier: str = ""  # md:metaData/md:date

    @classmethod
    def from_dict(cls, data: dict) -> Metadata:
        """Rebuild from `dataclasses.asdict(metadata)` (as saved between pipeline steps)."""
        d = dict(data)

        def party(p: dict | None) -> Party | None:
            if p is None:
                return None
            return Party(Identite(**p["identite"]), Adresse(**p["adresse"]), Contact(**p["contact"]))

        d["auteur"] = party(d.get("auteur"))
        d["editeur"] = party(d.get("editeur"))
        if d.get("copyright") is not None:
            c = dict(d["copyright"])
            c["identite"] = Identite(**c["identite"])
            d["copyright"] = Copyright(**c)
        return cls(**d)


# --------------------------------------------------------------------------- inline content

InlineKind = Literal[
    "txt", "exposant", "attention", "valorisation", "principal", "secondaire", "reference", "lien", "unknown"
]


@dataclass
class Inline:
    """One run of inline content of a `texte`.

    kind:
      txt / exposant: text (superscript for exposant);
      attention / valorisation: a marker, `text` usually empty;
      principal: an index term (`anchor` is its unique id in the book);
      secondaire: a reference to a principal (`idref`);
      reference: emphasised reference, `subkind` = ouvrage|reglement|mouillage|carte|...;
      lien: `subkind` = web|mail|texte|illustration; `target` = address or numero;
      unknown: an element not in the vocabulary, `subkind` = its name; its text is kept.
    """

    kind: InlineKind
    text: str = ""
    subkind: str = ""
    target: str = ""
    anchor: str = ""
    idref: str = ""
    bpn_id: str = ""


@dataclass
class Texte:
    """A paragraph of inline runs."""

    runs: list[Inline] = field(default_factory=list)

    @property
    def plain(self) -> str:
        """The text content (markers print their text too, when they have some)."""
        return "".join(r.text for r in self.runs)


# --------------------------------------------------------------------------- blocks


@dataclass
class Illustration:
    """`illustration`: a figure referring to an image file by its numero."""

    numero: str = ""
    caption: str = ""
    source: str = ""  # credit
    t_illustration: str = ""  # photo | planche | carte index | tableau | ...
    orientation: int = 0  # 0 or 90
    interactive: bool = False
    bpn_id: str = ""
    anchor: str = ""  # unique id in the book
    line: int | None = None  # in the source file


@dataclass
class TableauRef:
    """`tableau`: a table referring to a spreadsheet file in `tableaux/` by its numero."""

    numero: str = ""
    caption: str = ""
    bpn_id: str = ""
    anchor: str = ""
    line: int | None = None  # in the source file


@dataclass
class Liste:
    """`liste`: a bulleted list of `texte`."""

    items: list[Texte] = field(default_factory=list)


@dataclass
class UnknownBlock:
    """A block element outside the vocabulary: its text is rendered, its name reported."""

    name: str
    text: str


Block = Texte | Liste | Illustration | TableauRef | UnknownBlock


@dataclass
class Alinea:
    """`alinea`: a numbered paragraph, with its correction state."""

    nmr: str = ""
    blocks: list[Block] = field(default_factory=list)
    t_maj: str = ""  # edition | nouveau | modification
    t_date: str = ""
    bpn_id: str = ""

    @property
    def corrected(self) -> bool:
        """True when a correction bar and date must be printed."""
        return self.t_maj == "modification"


SECTION_TAGS: tuple[str, ...] = ("chapitre", "sChapitre", "para", "sPara", "ssPara")


@dataclass
class Titre:
    """`titre` of a section."""

    numero: str = ""
    texte: Texte = field(default_factory=Texte)
    nmr: str = ""
    t_maj: str = ""
    t_date: str = ""

    @property
    def plain(self) -> str:
        """`numero texte` as plain text (bookmarks, TOC, running head)."""
        return " ".join(p for p in (self.numero, self.texte.plain.strip()) if p)


@dataclass
class Section:
    """One of chapitre > sChapitre > para > sPara > ssPara (level 1 to 5)."""

    tag: str
    level: int
    titre: Titre = field(default_factory=Titre)
    children: list[Alinea | Section | Illustration | UnknownBlock] = field(default_factory=list)
    bpn_id: str = ""
    anchor: str = ""  # unique id in the book


@dataclass
class Warning_:
    """A warning of the generation: a stable code, a message, where."""

    code: str
    message: str
    file: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else (f"{self.file}: " if self.file else "")
        return f"[{self.code}] {where}{self.message}"


@dataclass
class Document:
    """One XML document of an ouvrage (usually `xml/document.xml`)."""

    name: str  # file stem: "document", "annexe", ...
    path: str
    metadata: Metadata
    content: list[Section | Illustration | Alinea | UnknownBlock] = field(default_factory=list)  # <ouvrage>
    warnings: list[Warning_] = field(default_factory=list)

    @property
    def chapters(self) -> list[Section]:
        """The top-level sections (`chapitre`)."""
        return [c for c in self.content if isinstance(c, Section)]

    def iter_sections(self):
        """Every section, depth first, in reading order."""
        stack = list(reversed(self.chapters))
        while stack:
            s = stack.pop()
            yield s
            stack.extend(reversed([c for c in s.children if isinstance(c, Section)]))


@dataclass
class Ouvrage:
    """An ouvrage of the referentiel: its key, folder and documents."""

    key: str
    root: str  # local directory
    documents: list[Document] = field(default_factory=list)
    continuous: bool = False  # idocument.donottouch.xml present

    @property
    def main(self) -> Document:
        """`xml/document.xml` (the loader puts it first)."""
        return self.documents[0]
