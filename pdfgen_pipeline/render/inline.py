"""Inline content (`texte` runs) → HTML, with links and index anchors.

Kept in Python rather than in a template: it is the innermost loop of the book (tens of
thousands of runs) and every piece of text is escaped here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from pdfgen_pipeline.ouvrage.model import Inline, Texte

#: CSS class per `reference/@tReference`; other values get `ref-autre`.
REFERENCE_CLASSES = {"ouvrage": "ref-ouvrage", "reglement": "ref-reglement", "mouillage": "ref-mouillage",
                     "carte": "ref-carte"}


def normalize_numero(numero: str) -> str:
    """`1.2.2.A.` → `1.2.2.A` (the form used in file names and as lookup key)."""
    return numero.strip().rstrip(".").strip()


@dataclass
class LinkTargets:
    """Where internal links point: title and illustration numeros → anchors; principal ids → anchors."""

    titles: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)
    broken: list[tuple[str, str]] = field(default_factory=list)  # (kind, numero) not found

    def title(self, numero: str) -> str | None:
        return self.titles.get(normalize_numero(numero))

    def figure(self, numero: str) -> str | None:
        return self.figures.get(normalize_numero(numero))


def web_href(address: str) -> str:
    """The link of a web address: kept when http(s), else `https://` is put before it."""
    a = address.strip()
    if a.lower().startswith(("http://", "https://")):
        return a
    return "https://" + a


def _mail_href(address: str) -> str:
    a = address.strip()
    return a if a.lower().startswith("mailto:") else "mailto:" + a


def render_runs(texte: Texte, targets: LinkTargets, on_principal: Callable[[Inline], None] | None = None) -> Markup:
    """Render the runs of a `texte` to HTML; `on_principal` is called for each index term."""
    out: list[str] = []
    for r in texte.runs:
        k = r.kind
        if k == "txt":
            out.append(str(escape(r.text)))
        elif k == "exposant":
            out.append(f"<sup>{escape(r.text)}</sup>")
        elif k == "attention":
            out.append(f'<span class="attention" title="Attention">{escape(r.text)}</span>')
        elif k == "valorisation":
            out.append(f'<span class="valorisation">{escape(r.text)}</span>')
        elif k == "principal":
            if on_principal is not None:
                on_principal(r)
            out.append(f'<span class="principal" id="{r.anchor}">{escape(r.text)}</span>')
        elif k == "secondaire":
            anchor = targets.principals.get(r.idref)
            if anchor:
                out.append(f'<a class="secondaire" href="#{anchor}">{escape(r.text)}</a>')
            else:
                out.append(f'<span class="secondaire">{escape(r.text)}</span>')
        elif k == "reference":
            cls = REFERENCE_CLASSES.get(r.subkind, "ref-autre")
            out.append(f'<span class="reference {cls}">{escape(r.text)}</span>')
        elif k == "lien":
            out.append(_lien(r, targets))
        else:  # unknown inline element: text kept
            out.append(f'<span class="inconnu" data-element="{escape(r.subkind)}">{escape(r.text)}</span>')
    return Markup("".join(out).strip())


def _lien(r: Inline, targets: LinkTargets) -> str:
    text = escape(r.text.strip())
    if r.subkind == "web":
        return f'<a class="lien-web" href="{escape(web_href(r.target))}">{text}</a>'
    if r.subkind == "mail":
        return f'<a class="lien-mail" href="{escape(_mail_href(r.target))}">{text}</a>'
    if r.subkind in ("texte", "illustration"):
        # the source sometimes says "illustration" for a title and the reverse: try the other kind second
        first, second = (targets.title, targets.figure) if r.subkind == "texte" else (targets.figure, targets.title)
        anchor = first(r.target) or second(r.target)
        if anchor:
            return f'<a class="lien-interne lien-{r.subkind}" href="#{anchor}">{text}</a>'
        targets.broken.append((r.subkind, r.target))
        return f'<span class="lien-casse">{text}</span>'
    return f'<span class="lien-autre">{text}</span>'
