"""Synthetic ouvrages of a chosen length, for benchmarks and load tests.

The text is generated (deterministic for a given seed) with the vocabulary of a real book:
chapters, sous-chapitres and paragraphes with numbered titles, numbered alineas, index terms
(`principal`), references, web links, corrections (`tMaj="modification"`) and illustrations
without files (placeholders). About `ALINEAS_PER_PAGE` alineas fill a printed page.
"""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

#: Measured on the generated text: alineas per printed page (A4, body text).
ALINEAS_PER_PAGE = 11.0
SUBCHAPTERS = 4
PARAS = 3
ALINEAS = 6

_TEXT = (
    "la côte est basse et découpée bordée de nombreux écueils qui s’étendent au large du port le chenal "
    "d’accès balisé par des bouées latérales tribord et bâbord mène au bassin à flot où les navires de "
    "pêche et de plaisance trouvent un abri sûr par tous les temps mouillage recommandé par fonds de sable "
    "vaseux bonne tenue courant de marée porte au Nord pendant le flot et au Sud pendant le jusant vitesse "
    "maximale en vives-eaux moyennes amer remarquable clocher phare blanc à lanterne rouge feu à occultations "
    "alignement directeur relèvement vrai pilotage obligatoire pour les navires de plus de mètres de longueur"
)
_WORDS = _TEXT.split()
_PLACES = ("Kerléo", "Penmarc’h", "Trévignon", "Loctudy", "Bénodet", "Morgat", "Camaret", "Douarnenez",
           "Audierne", "Sein", "Concarneau", "Lesconil", "Guilvinec", "Doëlan", "Pouldu", "Glénan")

_METADATA = """<md:metaData xmlns:md="metaData.xsd">
<md:auteur><md:identite><md:nom>Shom</md:nom><md:organisation>Service hydrographique et océanographique
de la marine</md:organisation><md:abrev>Shom</md:abrev></md:identite>
<md:adresse><md:numero>13</md:numero><md:rue>rue du Chatellier</md:rue><md:codePostal>29228</md:codePostal>
<md:ville>Brest</md:ville><md:pays>France</md:pays></md:adresse>
<md:contact><md:email>bench@exemple.shom.fr</md:email><md:site>www.shom.fr</md:site></md:contact></md:auteur>
<md:publication><md:titres><md:titre tTitre="actuel"><md:sTitre>{title}</md:sTitre><md:pays>France</md:pays>
<md:region>(ouvrage synthétique)</md:region></md:titre></md:titres>
<md:maj><md:gan>2026-01-07</md:gan><md:bat>2026-01-01</md:bat><md:dms>2026-01-05</md:dms></md:maj>
<md:numerotation><md:serie>{key}</md:serie></md:numerotation><md:date>2026-01-05</md:date>
<md:ouvrage tOuvrage="livre"><md:nomCourt>in</md:nomCourt><md:nomLong>Instructions nautiques</md:nomLong>
<md:nota>Ouvrage synthétique : ne pas utiliser pour la navigation.</md:nota></md:ouvrage></md:publication>
<md:date>2026-01-05</md:date></md:metaData>"""


class _Writer:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.ids = 0

    def bpn(self) -> str:
        self.ids += 1
        return f"s{self.ids}"

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def titre(self, numero: str, text: str) -> str:
        return (f'<titre tDate="2026-01-05" tMaj="edition"><nmrAlinea>01</nmrAlinea><numero>{numero}</numero>'
                f"<texte><txt>{escape(text)}</txt></texte></titre>")

    def alinea(self, n: int, numero: str) -> str:
        r = self.rng.random()
        kind = 'tDate="2026-01-05" tMaj="modification"' if r < 0.05 else 'tDate="2026-01-05" tMaj="edition"'
        parts = [f"<txt>{self.words(self.rng.randint(25, 50))} </txt>"]
        if r < 0.4:
            parts.append(f'<principal bpn_id="{self.bpn()}">{self.rng.choice(_PLACES)}</principal>')
            parts.append(f"<txt> {self.words(self.rng.randint(10, 30))}.</txt>")
        elif r < 0.5:
            parts.append(f'<reference tReference="carte" bpn_id="{self.bpn()}T">{self.rng.randint(7000, 7999)}'
                         "</reference><txt>.</txt>")
        elif r < 0.52:
            parts.append('<lien tLien="web"><txt>www.shom.fr</txt></lien><txt>.</txt>')
        else:
            parts.append(f"<txt>{self.words(self.rng.randint(5, 15))}.</txt>")
        figure = ""
        if r > 0.985:
            figure = (f'<illustration tIllustration="photo" orientation="0" interactive="non" bpn_id="{self.bpn()}">'
                      f"<numero>{numero}</numero><txt>Vue synthétique {numero}</txt></illustration>")
        return (f'<alinea bpn_id="{self.bpn()}" {kind}><nmrAlinea>{n:02d}</nmrAlinea>{figure}'
                f"<texte>{''.join(parts)}</texte></alinea>")


def ouvrage_xml(key: str, pages: int, seed: int = 0) -> str:
    """The `document.xml` of a synthetic ouvrage of about `pages` printed pages."""
    w = _Writer(seed)
    per_chapter = SUBCHAPTERS * PARAS * ALINEAS
    alineas = max(ALINEAS, round(pages * ALINEAS_PER_PAGE))
    chapters = max(1, round(alineas / per_chapter))
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<document>{_METADATA.format(key=escape(key), title=escape(key))}'
           f'<ouvrage bpn_id="{w.bpn()}">']
    left = alineas
    for c in range(1, chapters + 1):
        out.append(f'<chapitre bpn_id="{w.bpn()}">' + w.titre(f"{c}.", f"Chapitre {c} : {w.rng.choice(_PLACES)}"))
        for s in range(1, SUBCHAPTERS + 1):
            out.append(f'<sChapitre bpn_id="{w.bpn()}">' + w.titre(f"{c}.{s}.", w.words(4).capitalize()))
            for p in range(1, PARAS + 1):
                out.append(f'<para bpn_id="{w.bpn()}">' + w.titre(f"{c}.{s}.{p}.", w.words(3).capitalize()))
                count = ALINEAS if c < chapters else max(1, min(ALINEAS, left // max(1, (SUBCHAPTERS * PARAS))))
                for a in range(count):
                    out.append(w.alinea(7 + 6 * a, f"{c}.{s}.{p}.{a + 1}."))
                    left -= 1
                out.append("</para>")
            out.append("</sChapitre>")
        out.append("</chapitre>")
    out.append("</ouvrage></document>\n")
    return "\n".join(out)


def write_ouvrage(referentiel: Path, key: str, pages: int, seed: int = 0) -> Path:
    """Write `<referentiel>/<key>/xml/document.xml` for about `pages` pages; returns the ouvrage folder."""
    folder = Path(referentiel) / key
    (folder / "xml").mkdir(parents=True, exist_ok=True)
    (folder / "xml" / "document.xml").write_text(ouvrage_xml(key, pages, seed), encoding="utf-8")
    return folder
