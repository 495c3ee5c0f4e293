"""What counts as an ouvrage in a local referentiel directory (section 1 of the reference)."""

from __future__ import annotations

from pathlib import Path

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError, validate_ouvrage_key

#: Top-level folders that are never ouvrages.
NOT_OUVRAGES = frozenset({"commun", "source", "Fichiers_communs"})


def list_ouvrages(referentiel: Path) -> list[str]:
    """Keys of the top-level folders that have `xml/document.xml` (dot-folders, `commun/`, `source/`,
    `Fichiers_communs/` and unsafe names are skipped), sorted."""
    keys = []
    for d in sorted(Path(referentiel).iterdir()):
        if d.name.startswith(".") or d.name in NOT_OUVRAGES or not d.is_dir():
            continue
        if not (d / "xml" / "document.xml").is_file():
            continue
        try:
            keys.append(validate_ouvrage_key(d.name))
        except InvalidKeyError:
            continue
    return keys
