"""The hostile and broken inputs, each with its expected outcome.

A case writes an ouvrage folder (`Bench.ouvrage`, key `h1`) from code: a small valid document
around the hostile part, and the hostile files. Three outcomes:

- `Raises`: the ouvrage is refused with an exception whose message names the file (and, for XML,
  the line, and the column when libxml2 gives one);
- `Warns`: the book is rendered (placeholder for the bad part) and the generation reports
  warnings (code + message);
- `Neutralised`: the book is rendered and the hostile part is inert (text printed as text, link
  rewritten, reference never followed); `check` says how that is proven.

What a case must not do (read or write outside its folders, open /etc/passwd, connect anywhere,
leave a process behind, leak a secret into the outputs) is checked for every case by the test.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError
from pdfgen_pipeline.ouvrage.loader import OuvrageError
from pdfgen_pipeline.xmlsafe import XmlInputError
from pdfgen_pipeline_tests.hostile.watch import Listener, Tripwire

KEY = "h1"
SENTINEL = "Texte ordinaire de l’alinéa"
#: Image conversion timeout used by the corpus (production default: 60 s).
IMAGE_TIMEOUT_S = 4
META = ('<md:metaData xmlns:md="metaData.xsd"><md:publication><md:titres><md:titre tTitre="actuel">'
        "<md:sTitre>Corpus hostile</md:sTitre></md:titre></md:titres><md:numerotation><md:serie>h1</md:serie>"
        '</md:numerotation><md:ouvrage tOuvrage="livre"><md:nomCourt>in</md:nomCourt>'
        "<md:nomLong>Instructions nautiques</md:nomLong></md:ouvrage></md:publication></md:metaData>")
#: Line of `extra` in `document_xml()` without prolog (each prolog line shifts it by one).
EXTRA_LINE = 8


def document_xml(extra: str = "", *, prolog: str = "", encoding: str = "UTF-8", meta: str = META,
                 ouvrage_attrs: str = "") -> str:
    """A small valid ouvrage document; `extra` goes on its own line (EXTRA_LINE) inside the chapter."""
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n{prolog}<document{ouvrage_attrs}>\n{meta}\n<ouvrage>\n'
            "<chapitre>\n<titre><numero>1.</numero><texte><txt>Généralités</txt></texte></titre>\n"
            f"<alinea><nmrAlinea>07</nmrAlinea><texte><txt>{SENTINEL}.</txt></texte></alinea>\n"
            f"{extra}\n</chapitre>\n</ouvrage>\n</document>\n")


def figure(numero: str = "9.H.", caption: str = "Figure hostile") -> str:
    return (f'<alinea><nmrAlinea>13</nmrAlinea><illustration tIllustration="photo"><numero>{numero}</numero>'
            f"<txt>{caption}</txt></illustration></alinea>")


def tableau(numero: str = "9.T.", caption: str = "Tableau hostile") -> str:
    return f"<alinea><nmrAlinea>19</nmrAlinea><tableau><numero>{numero}</numero><txt>{caption}</txt></tableau></alinea>"


# ----------------------------------------------------------------------------- file makers

def eps(program: str) -> bytes:
    """An EPS whose body is `program` (PostScript)."""
    return ("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 100\n%%EndComments\n"
            f"/Helvetica findfont 10 scalefont setfont\n{program}\nshowpage\n%%EOF\n").encode()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int) -> bytes:
    """A PNG of `width` × `height` white pixels, whatever the size (the data is barely there)."""
    rows = (b"\x00" + b"\xff" * 3 * width) * height if width * height <= 10_000 else b"\x00" * 64
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


SVG_OPEN = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200"'
            ' height="100">')


def svg(body: str, prolog: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}{SVG_OPEN}<rect width="200" height="100" fill="#ccc"/>' \
           f"{body}</svg>\n".encode()


ODF_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
            ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
            ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"'
            ' office:mimetype="application/vnd.oasis.opendocument.spreadsheet">\n'
            '<office:body><office:spreadsheet><table:table table:name="T">\n')
ODF_TAIL = "</table:table></office:spreadsheet></office:body></office:document>\n"


def odf(rows: str, prolog: str = "") -> bytes:
    head = ODF_HEAD.replace("\n", "\n" + prolog, 1) if prolog else ODF_HEAD
    return (head + rows + "\n" + ODF_TAIL).encode()


def row(*cells: str, repeat: int = 1) -> str:
    rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rep}>{''.join(cells)}</table:table-row>"


def cell(text: str, attrs: str = "") -> str:
    return f"<table:table-cell{attrs}><text:p>{text}</text:p></table:table-cell>"


def billion_laughs(root: str) -> str:
    """The DOCTYPE of the billion laughs attack (10^9 'lol' once expanded)."""
    ents = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return f"<!DOCTYPE {root} [{ents}]>\n"


# ----------------------------------------------------------------------------- bench


@dataclass
class Bench:
    """The folders of one case: referentiel (ouvrage + commun), output, render temp, and `outside`,
    which holds secrets, canaries and tripwires that the render must never touch."""

    root: Path
    folder: str = KEY  # name of the ouvrage folder
    tripwires: dict[str, Tripwire] = field(default_factory=dict)
    listener: Listener | None = None

    def __post_init__(self) -> None:
        for d in (self.ouvrage / "xml", self.commun, self.tmp, self.outside):
            d.mkdir(parents=True, exist_ok=True)
        (self.outside / "secret.txt").write_text("SECRET-OUTSIDE-9d2f\n", "utf-8")

    ref = property(lambda self: self.root / "ref")
    ouvrage = property(lambda self: self.ref / self.folder)
    commun = property(lambda self: self.ref / "commun")
    out = property(lambda self: self.root / "out")
    tmp = property(lambda self: self.root / "tmp")
    outside = property(lambda self: self.root / "outside")

    def write(self, rel: str, data: bytes | str) -> Path:
        """Write a file of the ouvrage (`rel` relative to its folder)."""
        path = self.ouvrage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def document(self, extra: str = "", **kw) -> Path:
        return self.write("xml/document.xml", document_xml(extra, **kw))

    def tripwire(self, name: str) -> Tripwire:
        self.tripwires[name] = Tripwire(self.outside / name)
        return self.tripwires[name]

    def listen(self) -> Listener:
        self.listener = self.listener or Listener()
        return self.listener

    def close(self) -> None:
        for t in self.tripwires.values():
            t.close()
        if self.listener is not None:
            self.listener.close()


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Raises:
    """Refused: `exc` raised, `message` (regex) in its text, which starts with the file (relative to the
    ouvrage folder) then `:line` (`:line:column` when `column`); `line=0`: some line, any."""

    exc: type[Exception]
    message: str
    file: str | None = "xml/document.xml"
    line: int | None = None
    column: bool = False


@dataclass(frozen=True)
class W:
    """An expected warning: its code, a regex on its message, and optionally the file it names."""

    code: str
    message: str
    file: str | None = None  # relative to the ouvrage folder; the warning's `file` must be it


@dataclass(frozen=True)
class Warns:
    """Rendered with these warnings (among others); `printed` must be in the PDF text."""

    warnings: tuple[W, ...]
    printed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Neutralised:
    """Rendered, the hostile part inert; `printed` must be in the PDF text."""

    printed: tuple[str, ...] = ()


Outcome = Raises | Warns | Neutralised


@dataclass(frozen=True)
class Case:
    id: str
    title: str  # the input, in words (docs/hostile-inputs.md)
    build: Callable[[Bench], None]
    outcome: Outcome
    key: str | None = None  # passed to render_ouvrage (default: the folder name)
    folder: str = KEY  # name of the ouvrage folder
    check: Callable[[Bench, Path], None] | None = None  # extra proof by effect, given the output folder
    max_seconds: float | None = None


# ----------------------------------------------------------------------------- builders


def _malformed(b: Bench) -> None:
    b.document('<alinea><nmrAlinea>13</nmrAlinea><texte><txt>balise non fermée</texte></alinea>')


def _truncated(b: Bench) -> None:
    data = document_xml(figure()).encode()
    b.write("xml/document.xml", data[: data.index(SENTINEL.encode()) + 5])  # cut inside line 7


def _latin1(b: Bench) -> None:
    b.write("xml/document.xml", document_xml().replace("’", "'").encode("latin-1"))  # says UTF-8


def _utf16_declared_utf8_bytes(b: Bench) -> None:
    b.write("xml/document.xml", document_xml(encoding="UTF-16").encode("utf-8"))


def _utf16_no_bom(b: Bench) -> None:
    b.write("xml/document.xml", document_xml(encoding="UTF-16").encode("utf-16-le"))


def _xxe(b: Bench) -> None:
    trip = b.tripwire("xxe-target")
    b.document("<alinea><nmrAlinea>13</nmrAlinea><texte><txt>&passwd;</txt><txt>&trip;</txt></texte></alinea>",
               prolog=f'<!DOCTYPE document [<!ENTITY passwd SYSTEM "file:///etc/passwd">'
                      f'<!ENTITY trip SYSTEM "{trip.uri}">]>\n')


def _xxe_parameter(b: Bench) -> None:
    url = b.listen().url
    b.document(prolog=f'<!DOCTYPE document [<!ENTITY % remote SYSTEM "{url}/evil.dtd"> %remote;]>\n')


def _billion_laughs(b: Bench) -> None:
    b.document('<alinea><nmrAlinea>13</nmrAlinea><texte><txt>&lol9;</txt></texte></alinea>',
               prolog=billion_laughs("document"))


def _text_50mb(b: Bench) -> None:
    b.document("<alinea><nmrAlinea>13</nmrAlinea><texte><txt>" + "A" * (50 * 1024 * 1024) + "</txt></texte></alinea>")


def _attribute_20mb(b: Bench) -> None:
    b.document(f'<alinea tMaj="{"A" * (20 * 1024 * 1024)}"><nmrAlinea>13</nmrAlinea></alinea>')


def _attribute_5mb(b: Bench) -> None:
    b.document(f'<alinea tMaj="{"A" * (5 * 1024 * 1024)}"><nmrAlinea>13</nmrAlinea><texte><txt>Alinéa au '
               "tMaj démesuré</txt></texte></alinea>")


def _nested(b: Bench) -> None:
    b.document("<encadre>" * 10_000 + "x" + "</encadre>" * 10_000)


def _nul(b: Bench) -> None:
    b.write("xml/document.xml", document_xml("<alinea><nmrAlinea>13</nmrAlinea><texte><txt>nul ici</txt></texte>"
                                             "</alinea>").encode().replace(b"nul ici", b"nul\x00ici"))


def _empty_file(b: Bench) -> None:
    b.write("xml/document.xml", b"")


def _missing_document(b: Bench) -> None:
    b.write("xml/annexe.xml", document_xml())


def _empty_ouvrage(b: Bench) -> None:
    b.write("xml/document.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<document>\n{META}\n<ouvrage>\n'
                                "  <!-- vide -->\n</ouvrage>\n</document>\n")


def _wrong_root(b: Bench) -> None:
    b.write("xml/document.xml", '<?xml version="1.0"?>\n<html><body><ouvrage/></body></html>\n')


def _document_symlink(b: Bench) -> None:
    (b.ouvrage / "xml" / "document.xml").symlink_to("/etc/passwd")


def _xml_folder_symlink(b: Bench) -> None:
    elsewhere = b.outside / "autre-ouvrage" / "xml"
    elsewhere.mkdir(parents=True)
    (elsewhere / "document.xml").write_text(document_xml(
        "<alinea><nmrAlinea>13</nmrAlinea><texte><txt>SECRET-OUTSIDE-9d2f</txt></texte></alinea>"), "utf-8")
    (b.ouvrage / "xml").rmdir()
    (b.ouvrage / "xml").symlink_to(elsewhere, target_is_directory=True)


def _document_fifo(b: Bench) -> None:
    (b.ouvrage / "xml").rmdir()
    (b.ouvrage / "xml").mkdir()
    b.tripwires["document.xml"] = Tripwire(b.ouvrage / "xml" / "document.xml")


def _external_dtd_file(b: Bench) -> None:
    b.document(prolog=f'<!DOCTYPE document SYSTEM "{b.tripwire("external.dtd").uri}">\n')


def _external_dtd_http(b: Bench) -> None:
    url = b.listen().url
    b.document(prolog=f'<?xml-stylesheet type="text/xsl" href="{url}/document.xsl"?>\n'
                      f'<!DOCTYPE document PUBLIC "-//SHOM//DTD Ouvrage//FR" "{url}/document.dtd">\n',
               ouvrage_attrs=f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
                             f' xsi:noNamespaceSchemaLocation="{url}/document.xsd"')


def _unknown_elements(b: Bench) -> None:
    b.document('<alinea><nmrAlinea>13</nmrAlinea><texte><txt>avant </txt><sigle>SIGLE-INCONNU</sigle></texte>'
               '</alinea><encadre>ENCADRE-INCONNU</encadre>')


def _markup_in_text(b: Bench) -> None:
    url = b.listen().url
    b.document("<alinea><nmrAlinea>13</nmrAlinea><texte><txt>&lt;img src=\"file:///etc/passwd\"&gt;"
               f"&lt;link rel=\"stylesheet\" href=\"{url}/x.css\"&gt;<![CDATA[<script>alert(1)</script>]]></txt>"
               "</texte></alinea>")


def _lien_schemes(b: Bench) -> None:
    links = "".join(f'<lien tLien="{kind}"><txt>{target}</txt></lien><txt> ; </txt>' for kind, target in (
        ("web", "javascript:alert(document.cookie)"), ("web", "JaVaScRiPt:alert(1)"), ("web", "file:///etc/passwd"),
        ("web", "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"), ("mail", "javascript:alert(1)")))
    b.document(f"<alinea><nmrAlinea>13</nmrAlinea><texte>{links}</texte></alinea>")


MARKUP_NAME = 'x"><h1>INJECTED<b title="'


def _document_name_markup(b: Bench) -> None:
    b.document()
    b.write(f"xml/{MARKUP_NAME}.xml", document_xml(
        '<alinea><nmrAlinea>13</nmrAlinea><texte><principal id="p">Ouessant</principal>'
        '<secondaire idref="p">baie</secondaire></texte></alinea>'))


def _metadata_traversal(b: Bench) -> None:
    b.document(meta=META.replace("<md:serie>h1</md:serie>", "<md:serie>../../../../outside/pwned</md:serie>")
               .replace("<md:nomCourt>in</md:nomCourt>", "<md:nomCourt>/etc/cron.d/x</md:nomCourt>"))


def _party(tag: str, site: str) -> str:
    return (f"<md:{tag}><md:identite><md:organisation>Shom</md:organisation></md:identite><md:contact>"
            f"<md:email>contact@shom.fr</md:email><md:site>{site}</md:site></md:contact></md:{tag}>")


def _metadata_site(b: Bench) -> None:
    parties = _party("auteur", "file:///etc/passwd") + _party("editeur", "javascript://%0Aalert(document.domain)")
    b.document(meta=META.replace("<md:publication>", parties + "<md:publication>"))


def _eps(name: str, program: str, numero: str = "9.H") -> Callable[[Bench], None]:
    def build(b: Bench) -> None:
        b.document(figure(numero + "."))
        b.write(f"illustrations/eps/{numero}.eps", eps(program.format(outside=b.outside)))
    build.__name__ = f"_eps_{name}"
    return build


def _eps_read(b: Bench) -> None:
    trip = b.tripwire("eps-read-target")
    b.document(figure("9.H.") + figure("9.I."))
    read = "/f ({}) (r) file def /buf 200 string def 10 50 moveto f buf readstring pop show"
    b.write("illustrations/eps/9.H.eps", eps(read.format("/etc/passwd")))
    b.write("illustrations/eps/9.I.eps", eps(read.format(trip.path)))


def _eps_delete(b: Bench) -> None:
    for name in ("canary-delete.txt", "canary-rename.txt"):
        (b.outside / name).write_text("keep me\n", "utf-8")
    b.document(figure("9.H.") + figure("9.I."))
    b.write("illustrations/eps/9.H.eps", eps(f"({b.outside}/canary-delete.txt) deletefile"))
    b.write("illustrations/eps/9.I.eps", eps(f"({b.outside}/canary-rename.txt) ({b.outside}/renamed.txt) renamefile"))


def _image(rel: str, data: bytes | Callable[[Bench], bytes], numero: str = "9.H.") -> Callable[[Bench], None]:
    def build(b: Bench) -> None:
        b.document(figure(numero))
        b.write(rel, data(b) if callable(data) else data)
    return build


def _svg_file_href(b: Bench) -> bytes:
    trip = b.tripwire("svg-target")
    return svg('<image href="file:///etc/passwd" width="10" height="10"/>'
               f'<image xlink:href="{trip.uri}" width="10" height="10"/>'
               '<use href="file:///etc/passwd#x"/><image href="../../../../etc/passwd" width="1" height="1"/>')


def _svg_ssrf(b: Bench) -> bytes:
    local = b.listen().url
    return svg("<style>@import url(\"http://169.254.169.254/latest/meta-data/s.css\");"
               " rect { fill: url(http://169.254.169.254/latest/meta-data/iam) }"
               f" circle {{ fill: url({local}/c) }}</style>"
               '<image href="http://169.254.169.254/latest/meta-data/" width="10" height="10"/>'
               f'<image xlink:href="{local}/img.png" width="10" height="10"/>'
               '<circle r="5" style="stroke: url(\'http://169.254.169.254/latest/user-data\')"/>'
               '<a xlink:href="http://169.254.169.254/"><rect width="5" height="5"/></a>')


def _svg_xxe(b: Bench) -> bytes:
    return svg('<text x="10" y="50">&passwd;</text>',
               prolog='<!DOCTYPE svg [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>\n')


def _illustration_symlink(b: Bench) -> None:
    (b.outside / "secret.png").write_bytes(png(4, 4))
    b.document(figure("9.H.") + figure("9.I."))
    (b.ouvrage / "illustrations").mkdir()
    (b.ouvrage / "illustrations" / "9.H.svg").symlink_to("/etc/passwd")
    (b.ouvrage / "illustrations" / "9.I.png").symlink_to(b.outside / "secret.png")


def _numero_traversal(b: Bench) -> None:
    (b.outside / "secret.xml").write_bytes(odf(row(cell("SECRET-OUTSIDE-9d2f"))))
    b.document(figure("../../../../etc/passwd.") + figure("/etc/passwd") + tableau("../../outside/secret."))
    b.write("illustrations/1.A.png", png(4, 4))


def _table(data: bytes | Callable[[Bench], bytes]) -> Callable[[Bench], None]:
    def build(b: Bench) -> None:
        b.document(tableau())
        b.write("tableaux/9.T.xml", data(b) if callable(data) else data)
    return build


def _table_fifo(b: Bench) -> None:
    b.document(tableau())
    (b.ouvrage / "tableaux").mkdir()
    b.tripwires["9.T.xml"] = Tripwire(b.ouvrage / "tableaux" / "9.T.xml")


def _valid(b: Bench) -> None:
    b.document()


# ----------------------------------------------------------------------------- case-specific proofs


def _no_tripwire(b: Bench, out: Path) -> None:
    tripped = [name for name, t in b.tripwires.items() if t.tripped.is_set()]
    assert not tripped, f"read by someone: {tripped}"


def _no_connection(b: Bench, out: Path) -> None:
    assert b.listener is not None
    assert b.listener.close() == 0, "a connection reached the listener"


def _outside_untouched(*created: str, kept: tuple[str, ...] = ()) -> Callable[[Bench, Path], None]:
    def check(b: Bench, out: Path) -> None:
        for name in created:
            assert not (b.outside / name).exists(), f"{name} was created by the EPS"
        for name in kept:
            assert (b.outside / name).read_text("utf-8") == "keep me\n", f"{name} was changed by the EPS"
    return check


def _short_warnings(b: Bench, out: Path) -> None:
    report = (out / "report.json").stat().st_size
    log = (out / "stderr.log").stat().st_size
    assert report < 100_000 and log < 100_000, (report, log)


def _pdf_uris(out: Path) -> list[str]:
    uris = []
    for pdf_path in sorted(out.glob("*.pdf")):
        with pikepdf.open(pdf_path) as pdf:
            for page in pdf.pages:
                for annot in page.obj.get("/Annots", []):
                    action = annot.get("/A")
                    if action is not None and action.get("/URI") is not None:
                        uris.append(str(action.URI))
    return uris


def _links_neutralised(b: Bench, out: Path) -> None:
    uris = _pdf_uris(out)
    assert len(uris) == 5, uris
    for uri in uris:
        assert re.match(r"(https://|mailto:)", uri), uri
        assert not re.match(r"(?i)\s*(javascript|file|data):", uri), uri


def _site_not_linked(b: Bench, out: Path) -> None:
    uris = _pdf_uris(out)
    assert uris == ["mailto:contact@shom.fr", "mailto:contact@shom.fr"], f"links in the PDF: {uris}"
    (iso,) = out.glob("OUVNAUT_*.xml")
    text = iso.read_text("utf-8")
    assert "javascript" not in text and "file:" not in text, "the address reached the ISO metadata"
    assert "contact@shom.fr" in text


def _no_injection(b: Bench, out: Path) -> None:
    html = out / f"{MARKUP_NAME}.html"
    assert html.is_file() and (out / f"{MARKUP_NAME}.pdf").is_file()
    text = html.read_text("utf-8")
    assert "<h1>INJECTED" not in text and '"><' + "h1" not in text, "markup from the file name reached the HTML"
    assert '<span class="principal" id="x___h1_INJECTED_b_title__-ix1">' in text
    assert '<a class="secondaire" href="#x___h1_INJECTED_b_title__-ix1">' in text


def _metadata_name(b: Bench, out: Path) -> None:
    names = sorted(p.name for p in out.glob("OUVNAUT_*.xml"))
    assert names == ["OUVNAUT_ETC_CRON_D_X_OUTSIDE_PWNED.xml"], names
    assert not (b.root / "pwned").exists() and not list(b.outside.glob("pwned*"))


def _no_process_left(b: Bench, out: Path) -> None:
    from pdfgen_pipeline_tests.hostile.watch import processes_in

    assert not processes_in(b.tmp), "a tool is still running"


def _all(*checks: Callable[[Bench, Path], None]) -> Callable[[Bench, Path], None]:
    def check(b: Bench, out: Path) -> None:
        for c in checks:
            c(b, out)
    return check


# ----------------------------------------------------------------------------- the corpus

DOC = "xml/document.xml"
L = EXTRA_LINE

CASES: list[Case] = [
    # -- the XML of the document: refused, with file, line and column ---------------------
    Case("malformed-xml", "mismatched tags in xml/document.xml", _malformed,
         Raises(XmlInputError, r"malformed XML: Opening and ending tag mismatch: txt line 8 and texte", line=L,
                column=True)),
    Case("truncated-file", "xml/document.xml cut in the middle of a text", _truncated,
         Raises(XmlInputError, r"malformed XML: Premature end of data in tag txt", line=7, column=True)),
    Case("declared-utf8-latin1-bytes", 'declares encoding="UTF-8", written in Latin-1', _latin1,
         Raises(XmlInputError, r"malformed XML: Invalid bytes in character encoding", line=6, column=True)),
    Case("declared-utf16-utf8-bytes", 'declares encoding="UTF-16", written in UTF-8 (no BOM)',
         _utf16_declared_utf8_bytes,
         Raises(XmlInputError, r'declares encoding="UTF-16" but the bytes are not UTF-16', line=1)),
    Case("utf16-without-bom", "UTF-16 LE without byte-order mark", _utf16_no_bom,
         Raises(XmlInputError, r"UTF-16 text without a byte-order mark \(BOM\)", line=1)),
    Case("xxe-file", "XXE: external entities file:///etc/passwd and a file of ours (tripwire)", _xxe,
         Raises(XmlInputError, r"DOCTYPE with an internal subset .* is not allowed", line=0), check=_no_tripwire),
    Case("xxe-parameter-entity", "XXE: parameter entity loading an external DTD over HTTP", _xxe_parameter,
         Raises(XmlInputError, r"DOCTYPE with an internal subset .* is not allowed", line=0), check=_no_connection),
    Case("billion-laughs", "billion laughs (10^9 expansions)", _billion_laughs,
         Raises(XmlInputError, r"entity declarations expanding too much \(billion laughs\): not allowed$", line=0)),
    Case("text-node-50mb", "a 50 MB text node", _text_50mb,
         Raises(XmlInputError, r"a text node is larger than 10 MB$", line=L, column=True)),
    Case("attribute-20mb", "a 20 MB attribute value", _attribute_20mb,
         Raises(XmlInputError, r"an attribute value is larger than 10 MB$", line=L, column=True)),
    Case("nested-10000", "10,000 nested elements", _nested,
         Raises(XmlInputError, r"elements nested deeper than 256 levels$", line=L, column=True)),
    Case("nul-byte", "a NUL byte in a text", _nul,
         Raises(XmlInputError, r"malformed XML: .*Char 0x0 out of allowed range", line=L, column=True)),
    Case("empty-file", "xml/document.xml of 0 bytes", _empty_file, Raises(XmlInputError, r": empty file$")),
    Case("missing-document", "no xml/document.xml (only xml/annexe.xml)", _missing_document,
         Raises(OuvrageError, r"missing: an ouvrage needs xml/document.xml")),
    Case("empty-ouvrage", "<ouvrage> with only a comment", _empty_ouvrage,
         Raises(XmlInputError, r"empty <ouvrage>: no chapter, alinea or illustration to print", line=4)),
    Case("wrong-root", "root element <html> instead of <document>", _wrong_root,
         Raises(XmlInputError, r"root element is <html>, expected <document>", line=2)),
    Case("document-symlink", "xml/document.xml is a symbolic link to /etc/passwd", _document_symlink,
         Raises(OuvrageError, r"symbolic link pointing outside the ouvrage folder: refused")),
    Case("xml-folder-symlink", "xml/ is a symbolic link to another folder", _xml_folder_symlink,
         Raises(OuvrageError, r"symbolic link pointing outside the ouvrage folder: refused")),
    Case("document-fifo", "xml/document.xml is a FIFO (would block a reader)", _document_fifo,
         Raises(OuvrageError, r"not a regular file: an ouvrage needs xml/document.xml"), check=_no_tripwire),
    # -- the XML of the document: accepted, the hostile part inert -------------------------
    Case("external-dtd-file", "DOCTYPE with an external DTD file:// (tripwire)", _external_dtd_file,
         Neutralised((SENTINEL,)), check=_no_tripwire),
    Case("external-dtd-http", "external DTD, xml-stylesheet and xsi:noNamespaceSchemaLocation over HTTP",
         _external_dtd_http, Neutralised((SENTINEL,)), check=_no_connection),
    Case("markup-in-text", "escaped <img src=file:///etc/passwd>, <link href=http://…>, CDATA <script>",
         _markup_in_text, Neutralised(('<img src="file:///etc/passwd">', "<script>alert(1)</script>")),
         check=_no_connection),
    Case("lien-schemes", "lien web/mail to javascript:, file:///etc/passwd, data:", _lien_schemes,
         Neutralised(("javascript:alert(document.cookie)",)), check=_links_neutralised),
    Case("document-name-markup", 'a document named x"><h1>INJECTED<b title=".xml', _document_name_markup,
         Neutralised((SENTINEL,)), check=_no_injection),
    Case("metadata-file-name", "md:serie ../../../../outside/pwned, md:nomCourt /etc/cron.d/x", _metadata_traversal,
         Neutralised((SENTINEL,)), check=_metadata_name),
    Case("metadata-site-scheme", "md:site javascript://%0Aalert(…) (éditeur) and file:///etc/passwd (auteur)",
         _metadata_site,
         Warns((W("unsafe-url", r'^md:site "file:///etc/passwd": only http\(s\) addresses are linked; left out$', DOC),
                W("unsafe-url", r'^md:site "javascript://%0Aalert\(document\.domain\)": only http\(s\)', DOC))),
         check=_site_not_linked),
    Case("unknown-elements", "elements outside the vocabulary (<sigle>, <encadre>)", _unknown_elements,
         Warns((W("unknown-element", r"^unknown element <sigle> in <texte>: its text is kept$", DOC),
                W("unknown-element", r"^unknown element <encadre> in <chapitre>", DOC)),
               printed=("SIGLE-INCONNU", "ENCADRE-INCONNU"))),
    Case("attribute-5mb", "a 5 MB tMaj value (under libxml2's limit)", _attribute_5mb,
         Warns((W("unknown-value", r'^unknown value tMaj="A{80}…" on <alinea>: rendered as plain$', DOC),),
               printed=("Alinéa au tMaj démesuré",)), check=_short_warnings),
    # -- illustrations -------------------------------------------------------------------
    Case("eps-infinite-loop", "EPS running `{} loop`", _eps("loop", "{{}} loop"),
         Warns((W("image-conversion", rf"^Ghostscript \(EPS → PDF\) timed out after {IMAGE_TIMEOUT_S} s: a "
                  "placeholder is printed$", "illustrations/eps/9.H.eps"),)),
         check=_no_process_left, max_seconds=IMAGE_TIMEOUT_S + 6),
    Case("eps-memory-hog", "EPS allocating arrays without end", _eps(
        "hog", "/keep [ ] def {{ /keep [ keep 16000000 array ] def }} loop"),
         Warns((W("image-conversion", r"^Ghostscript \(EPS → PDF\): memory limit of \d+ MB hit: a placeholder is "
                  "printed$", "illustrations/eps/9.H.eps"),)),
         check=_no_process_left),
    Case("eps-read-file", "EPS reading /etc/passwd and a file of ours with (r) file", _eps_read,
         Warns((W("image-conversion", r"^refused by Ghostscript -dSAFER .*/invalidfileaccess in --file--",
                  "illustrations/eps/9.H.eps"),
                W("image-conversion", r"^refused by Ghostscript -dSAFER .*/invalidfileaccess in --file--",
                  "illustrations/eps/9.I.eps"))),
         check=_no_tripwire),
    Case("eps-write-file", "EPS writing a file with (w) file", _eps(
        "write", "/f ({outside}/written.txt) (w) file def f (pwned) writestring f closefile"),
         Warns((W("image-conversion", r"^refused by Ghostscript -dSAFER .*/invalidfileaccess",
                  "illustrations/eps/9.H.eps"),)),
         check=_outside_untouched("written.txt")),
    Case("eps-delete-file", "EPS deleting (deletefile) and renaming (renamefile) a file", _eps_delete,
         Warns((W("image-conversion", r"^refused by Ghostscript -dSAFER .*/ioerror in --deletefile--",
                  "illustrations/eps/9.H.eps"),
                W("image-conversion", r"^refused by Ghostscript -dSAFER .*/ioerror in --renamefile--",
                  "illustrations/eps/9.I.eps"))),
         check=_outside_untouched("renamed.txt", kept=("canary-delete.txt", "canary-rename.txt"))),
    Case("eps-pipe-command", "EPS running a shell command through (%pipe%…) (w) file", _eps(
        "pipe", "/f (%pipe%touch {outside}/piped.txt) (w) file def f closefile"),
         Warns((W("image-conversion", r"^refused by Ghostscript -dSAFER .*/invalidfileaccess",
                  "illustrations/eps/9.H.eps"),)),
         check=_outside_untouched("piped.txt")),
    Case("eps-output-redirect", "EPS redirecting the output device (setpagedevice /OutputFile)", _eps(
        "redirect", "<< /OutputFile ({outside}/redirected.pdf) >> setpagedevice 10 50 moveto (x) show"),
         Warns((W("image-conversion", r"^refused by Ghostscript -dSAFER .*/invalidfileaccess in setpagedevice",
                  "illustrations/eps/9.H.eps"),)),
         check=_outside_untouched("redirected.pdf")),
    Case("corrupt-png", "PNG of 20 bytes (signature, then garbage)",
         _image("illustrations/png/9.H.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRgarb"),
         Warns((W("image-conversion", r"^corrupt or unreadable image: .*: a placeholder is printed$",
                  "illustrations/png/9.H.png"),))),
    Case("png-decompression-bomb", "PNG declaring 40,000 × 40,000 pixels (150 bytes)",
         _image("illustrations/png/9.H.png", png(40_000, 40_000)),
         Warns((W("image-conversion", r"^image too large \(decompression bomb protection\)",
                  "illustrations/png/9.H.png"),))),
    Case("pdf-not-a-pdf", "illustration .pdf: a %PDF- header then garbage",
         _image("illustrations/pdf/9.H.pdf", b"%PDF-1.7\n" + b"\x00garbage\n" * 20),
         Warns((W("image-conversion", r"^PDF → SVG failed: .*; raster fallback failed",
                  "illustrations/pdf/9.H.pdf"),))),
    Case("svg-script", "SVG with <script>, onload= and <foreignObject>", _image(
        "illustrations/svg/9.H.svg",
        svg('<script>alert(document.domain)</script><rect onload="alert(1)" width="5" height="5"/>'
            "<foreignObject><p>html</p></foreignObject>")),
         Warns((W("image-warning", r"^9\.H\.svg: removed <script> element$", "illustrations/svg/9.H.svg"),
                W("image-warning", r"^9\.H\.svg: removed event handler onload= on <rect>$"),
                W("image-warning", r"^9\.H\.svg: removed <foreignObject> element$")))),
    Case("svg-file-href", "SVG <image href=file:///etc/passwd>, xlink:href to a file of ours, <use>, ../ path",
         _image("illustrations/svg/9.H.svg", _svg_file_href),
         Warns((W("image-warning", r"removed external reference 'file:///etc/passwd' on <image>$"),
                W("image-warning", r"removed external reference 'file:///.*/svg-target' on <image>$"),
                W("image-warning", r"removed external reference 'file:///etc/passwd#x' on <use>$"),
                W("image-warning", r"removed external reference '\.\./\.\./\.\./\.\./etc/passwd' on <image>$"))),
         check=_no_tripwire),
    Case("svg-ssrf", "SVG referring to http://169.254.169.254/ (image href, xlink, CSS url(), @import, <a>)",
         _image("illustrations/svg/9.H.svg", _svg_ssrf),
         Warns((W("image-warning", r"removed '@import url\(\"http://169\.254\.169\.254/latest/meta-data/s\.css\"\);'"),
                W("image-warning", r"removed external reference 'http://169\.254\.169\.254/latest/meta-data/iam' from "
                  "<style>"),
                W("image-warning", r"removed external reference 'http://169\.254\.169\.254/latest/meta-data/' on "
                  "<image>"),
                W("image-warning", r"removed external reference 'http://127\.0\.0\.1:\d+/img\.png' on <image>"),
                W("image-warning", r"removed external reference 'http://169\.254\.169\.254/latest/user-data' from "
                  "style= on <circle>"),
                W("image-warning", r"removed external reference 'http://169\.254\.169\.254/' on <a>"))),
         check=_no_connection),
    Case("svg-xxe", "SVG with an external entity to /etc/passwd", _image("illustrations/svg/9.H.svg", _svg_xxe),
         Warns((W("image-conversion", r"^invalid SVG: .*DOCTYPE with an internal subset",
                  "illustrations/svg/9.H.svg"),))),
    Case("illustration-symlink", "illustrations/9.H.svg → /etc/passwd, 9.I.png → a PNG outside the ouvrage",
         _illustration_symlink,
         Warns((W("asset-lookup", r"illustrations/9\.H\.svg: symbolic link pointing outside .*, ignored$"),
                W("asset-lookup", r"illustrations/9\.I\.png: symbolic link pointing outside .*, ignored$"),
                W("missing-image", r"^illustration 9\.H\. « Figure hostile »: no file", DOC),
                W("missing-image", r"^illustration 9\.I\. « Figure hostile »: no file", DOC)))),
    Case("numero-traversal", "illustration/tableau numero ../../../../etc/passwd., /etc/passwd, ../../outside/secret.",
         _numero_traversal,
         Warns((W("missing-image", r"^illustration \.\./\.\./\.\./\.\./etc/passwd\. « Figure hostile »: no file", DOC),
                W("missing-image", r"^illustration /etc/passwd « Figure hostile »: no file", DOC),
                W("missing-table", r"^tableau \.\./\.\./outside/secret\. « Tableau hostile »: no file", DOC)))),
    # -- tables --------------------------------------------------------------------------
    Case("table-malformed", "tableaux/9.T.xml with a mismatched tag",
         _table(odf(row(cell("A1")) + "\n<table:table-row><table:table-cell><text:p>B1</table:table-cell>")),
         Warns((W("table-error", r"^malformed XML: Opening and ending tag mismatch: p line 5 and table-cell: a "
                  "placeholder is printed$", "tableaux/9.T.xml"),))),
    Case("table-span-beyond", "a cell spanning 50 columns × 1000 rows of a 3 × 3 table",
         _table(odf(row(cell("A1"), cell("B1"), cell("C1")) + row(cell("A2"), cell(
             "large", ' table:number-columns-spanned="50" table:number-rows-spanned="1000"')) + row(cell("A3")))),
         Warns((W("table-warning", r"B2.*clipped", "tableaux/9.T.xml"),), printed=("large", "A3"))),
    Case("table-billion-laughs", "billion laughs in a table file",
         _table(odf(row(cell("&lol9;")), prolog=billion_laughs("office:document"))),
         Warns((W("table-error", r"^entity declarations expanding too much \(billion laughs\)", "tableaux/9.T.xml"),))),
    Case("table-repeat-bomb", "a row repeated 2,000,000 times (number-rows-repeated)",
         _table(odf(row(cell("x"), repeat=2_000_000))),
         Warns((W("table-error", r"^too many cells \(more than 200000\)", "tableaux/9.T.xml"),))),
    Case("table-fifo", "tableaux/9.T.xml is a FIFO (would block a reader)", _table_fifo,
         Warns((W("missing-table", r"^tableau 9\.T\. « Tableau hostile »: no file", DOC),)), check=_no_tripwire),
    # -- ouvrage keys: refused before anything is read ------------------------------------
    *(Case(f"key-{name}", f"ouvrage key {shown}", _valid, Raises(InvalidKeyError, r"^invalid ouvrage key ", file=None),
           key=key)
      for name, key, shown in (("dotdot", "../x", "`../x`"), ("slash", "a/b", "`a/b`"), ("space", "a b", "`a b`"),
                               ("non-ascii", "cé22", "`cé22`"), ("300-chars", "x" * 300, "of 300 characters"))),
    Case("folder-name-space", "ouvrage folder named `c22 (copie)` (the key comes from the folder)", _valid,
         Raises(InvalidKeyError, r"^invalid ouvrage key 'c22 \(copie\)'", file=None), folder="c22 (copie)"),
]
