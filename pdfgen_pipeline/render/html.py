"""Document model → one HTML book (`document.html`) with Jinja2 templates and the print stylesheet.

The HTML holds three parts between markers — front matter (cover, notice, table of contents),
body (chapters), back matter (index) — so that `pdf.py` can lay them out separately and write
page numbers literally (`<span class="pn" data-target="…">`) once the body's layout is known.
Opened in a browser, the same file is a readable book without page numbers.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pdfgen_pipeline.ouvrage.model import (
    Alinea,
    Document,
    Illustration,
    Inline,
    Liste,
    Metadata,
    Section,
    TableauRef,
    Texte,
    UnknownBlock,
)
from pdfgen_pipeline.render.inline import LinkTargets, normalize_numero, render_runs, web_href
from pdfgen_pipeline.render.stamps import stampable

STYLESHEET = Path(__file__).parent / "styles" / "book.css"
STYLESHEET_HREF = "assets/book.css"
#: TOC depth: chapitre, sChapitre, para.
TOC_MAX_LEVEL = 3
PART_MARK = "<!-- pdfgen:part {name} -->"
PART_END = "<!-- pdfgen:end {name} -->"
PARTS = ("front", "body", "back")


@dataclass
class FigureResource:
    """What the book shows for an illustration: an image file (relative to the HTML) or a placeholder."""

    src: str | None  # None → placeholder
    kind: str = ""


@dataclass
class Resources:
    """Images and tables resolved for one document, keyed by normalized numero."""

    images: dict[str, FigureResource] = field(default_factory=dict)
    tables: dict[str, Markup | None] = field(default_factory=dict)


@dataclass
class TocEntry:
    level: int
    numero: str
    text: Markup
    anchor: str


@dataclass
class IndexEntry:
    term: str
    anchors: list[str]


@dataclass
class IndexGroup:
    letter: str
    entries: list[IndexEntry]


@dataclass
class BookCounts:
    """What the book contains (for the generation report)."""

    titles: int = 0
    titles_by_level: dict[str, int] = field(default_factory=dict)  # by tag: chapitre, sChapitre, …
    alineas: int = 0
    corrected_alineas: int = 0
    figures: int = 0
    tables: int = 0
    index_terms: int = 0
    index_entries: int = 0
    links_internal: int = 0
    links_external: int = 0


@dataclass
class BookHtml:
    """The rendered HTML and what was learnt while rendering it."""

    html: str
    counts: BookCounts
    toc: list[TocEntry]
    index: list[IndexGroup]
    broken_links: list[tuple[str, str]]
    title: str


def sort_key(term: str) -> tuple[str, str]:
    """French alphabetical order: accents and case ignored first, then used to break ties."""
    base = "".join(c for c in unicodedata.normalize("NFKD", term) if not unicodedata.combining(c))
    base = base.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae").replace("Æ", "ae")
    base = "".join(c for c in base.casefold() if c.isalnum() or c == " ")
    return (base.strip(), term)


def index_letter(term: str) -> str:
    """The letter under which `term` is listed (`Île` → `I`; digits → `0-9`)."""
    key = sort_key(term)[0]
    if not key:
        return "#"
    c = key[0]
    return "0-9" if c.isdigit() else c.upper()


def book_title(meta: Metadata, fallback: str) -> str:
    """`Instructions nautiques C22 — Du cap …` (what the PDF title and catalogue show)."""
    head = " ".join(p for p in (meta.nom_long, meta.serie.upper()) if p)
    if head and meta.titre:
        return f"{head} — {meta.titre}"
    return head or meta.titre or fallback


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("pdfgen_pipeline.render", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["frdate"] = format_date_fr
    env.filters["web_href"] = web_href
    env.tests.update(
        section=lambda x: isinstance(x, Section), alinea=lambda x: isinstance(x, Alinea),
        illustration=lambda x: isinstance(x, Illustration), tableau=lambda x: isinstance(x, TableauRef),
        texte=lambda x: isinstance(x, Texte), liste=lambda x: isinstance(x, Liste),
        unknown=lambda x: isinstance(x, UnknownBlock))
    return env


_ENV: Environment | None = None

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")


def format_date_fr(value: str) -> str:
    """`2023-01-11` → `11 janvier 2023`; anything else is returned as is."""
    parts = value.strip().split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        y, m, d = (int(p) for p in parts)
        if 1 <= m <= 12 and 1 <= d <= 31:
            return f"{d}{'er' if d == 1 else ''} {_MONTHS[m - 1]} {y}"
    return value


class _Builder:
    """Walks a `Document` once, producing the template context."""

    def __init__(self, doc: Document, resources: Resources):
        self.doc = doc
        self.res = resources
        self.counts = BookCounts()
        self.targets = LinkTargets()
        self.toc: list[TocEntry] = []
        self.index_terms: dict[str, list[str]] = {}
        self._collect_targets()

    def _collect_targets(self) -> None:
        def visit(items):
            for it in items:
                if isinstance(it, Section):
                    if it.titre.numero:
                        self.targets.titles.setdefault(normalize_numero(it.titre.numero), it.anchor)
                    visit(it.children)
                elif isinstance(it, Illustration):
                    self.targets.figures.setdefault(normalize_numero(it.numero), it.anchor)
                elif isinstance(it, Alinea):
                    visit(it.blocks)
                    for b in it.blocks:
                        if isinstance(b, Texte | Liste):
                            for t in b.items if isinstance(b, Liste) else [b]:
                                for r in t.runs:
                                    if r.kind == "principal" and r.idref:
                                        self.targets.principals.setdefault(r.idref, r.anchor)
                elif isinstance(it, TableauRef):
                    self.targets.figures.setdefault(normalize_numero(it.numero), it.anchor)

        visit(self.doc.content)

    # -- filters used by the templates ------------------------------------------------
    def runs(self, texte: Texte) -> Markup:
        html = render_runs(texte, self.targets, self._on_principal)
        return html

    def _on_principal(self, r: Inline) -> None:
        term = r.text.strip()
        if term:
            self.index_terms.setdefault(term, []).append(r.anchor)

    def section(self, s: Section) -> Section:
        self.counts.titles += 1
        self.counts.titles_by_level[s.tag] = self.counts.titles_by_level.get(s.tag, 0) + 1
        if s.level <= TOC_MAX_LEVEL:
            self.toc.append(TocEntry(s.level, s.titre.numero, render_runs(s.titre.texte, self.targets), s.anchor))
        return s

    @staticmethod
    def stamped(nmr: str, t_maj: str, t_date: str) -> bool:
        """Whether every margin note printed for this number and update can be stamped (`stamps.py`)."""
        texts = [t for t in (nmr, t_date if t_maj == "modification" else "") if t]
        return all(stampable(t) for t in texts)

    def alinea(self, a: Alinea) -> Alinea:
        self.counts.alineas += 1
        if a.corrected:
            self.counts.corrected_alineas += 1
        return a

    def image(self, fig: Illustration) -> FigureResource:
        self.counts.figures += 1
        return self.res.images.get(normalize_numero(fig.numero), FigureResource(None))

    def table(self, tab: TableauRef) -> Markup | None:
        self.counts.tables += 1
        return self.res.tables.get(normalize_numero(tab.numero))

    def index_groups(self) -> list[IndexGroup]:
        groups: dict[str, list[IndexEntry]] = {}
        for term in sorted(self.index_terms, key=sort_key):
            groups.setdefault(index_letter(term), []).append(IndexEntry(term, self.index_terms[term]))
        self.counts.index_terms = len(self.index_terms)
        self.counts.index_entries = sum(len(v) for v in self.index_terms.values())
        return [IndexGroup(k, v) for k, v in groups.items()]


def render_html(doc: Document, resources: Resources, *, ouvrage_key: str, continuous: bool = False,
                stylesheet_href: str = STYLESHEET_HREF, extra: Mapping[str, object] | None = None) -> BookHtml:
    """Render `doc` to one HTML book. `resources` says which images/tables exist."""
    global _ENV
    if _ENV is None:
        _ENV = _env()
    b = _Builder(doc, resources)
    meta = doc.metadata
    title = book_title(meta, ouvrage_key)
    tmpl = _ENV.get_template("book.html.j2")
    # the body is rendered first: it fills the TOC and the index as it goes
    body = _ENV.get_template("body.html.j2").render(doc=doc, b=b, continuous=continuous)
    index = b.index_groups()
    html = tmpl.render(
        meta=meta, doc=doc, key=ouvrage_key, title=title, body=Markup(body), toc=b.toc, index=index,
        running_head=" ".join(p for p in (meta.nom_long, meta.serie.upper()) if p) or title,
        continuous=continuous, stylesheet_href=stylesheet_href, part_mark=PART_MARK, part_end=PART_END,
        keywords=", ".join(p for p in (meta.nom_long, meta.serie.upper(), meta.pays, meta.region.strip("()"))
                           if p),
        **(extra or {}))
    c = b.counts
    c.links_internal = html.count('class="lien-interne')
    c.links_external = html.count('class="lien-web"') + html.count('class="lien-mail"')
    return BookHtml(html=html, counts=c, toc=b.toc, index=index, broken_links=b.targets.broken, title=title)


def split_parts(html: str) -> tuple[str, dict[str, str], str]:
    """Split a book produced by `render_html` into (head+opening, {part: html}, closing)."""
    parts: dict[str, str] = {}
    first = html.index(PART_MARK.format(name=PARTS[0]))
    prefix = html[:first]
    end = first
    for name in PARTS:
        start = html.index(PART_MARK.format(name=name), end)
        end = html.index(PART_END.format(name=name), start)
        parts[name] = html[start:end + len(PART_END.format(name=name))]
    suffix = html[end + len(PART_END.format(name=PARTS[-1])):]
    return prefix, parts, suffix
