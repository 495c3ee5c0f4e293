"""What counts as an ouvrage in a local referentiel directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdfgen_pipeline.referentiel import list_ouvrages


def _ouvrage(root: Path, name: str) -> Path:
    d = root / name
    (d / "xml").mkdir(parents=True)
    (d / "xml" / "document.xml").write_text("<document/>", "utf-8")
    return d


def test_sample_referentiel(referentiel):
    assert list_ouvrages(referentiel) == ["c99", "g9", "lf1"]
    # the folders that are skipped are really there
    for name in ("commun", "source", "Fichiers_communs"):
        assert (referentiel / name).is_dir()


def test_only_folders_with_xml_document_xml_count(tmp_path):
    for name in ("c22", "940", "g4", "in-c2.2_b"):
        _ouvrage(tmp_path, name)
    for name in ("commun", "source", "Fichiers_communs", ".git", ".hidden", "bad name", "cé22", "a..b", "-x"):
        _ouvrage(tmp_path, name)
    (tmp_path / "no_xml").mkdir()  # no xml/ at all
    (tmp_path / "empty_xml" / "xml").mkdir(parents=True)  # xml/ without document.xml
    (tmp_path / "other_doc" / "xml").mkdir(parents=True)
    (tmp_path / "other_doc" / "xml" / "annexe.xml").write_text("<document/>", "utf-8")
    (tmp_path / "dir_doc" / "xml" / "document.xml").mkdir(parents=True)  # a directory, not a file
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "document.xml").write_text("<document/>", "utf-8")  # not under xml/
    (tmp_path / "file.xml").write_text("<document/>", "utf-8")  # a file at top level
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    assert list_ouvrages(tmp_path) == ["940", "c22", "g4", "in-c2.2_b"]


def test_result_is_sorted_and_accepts_a_string(tmp_path):
    for name in ("z1", "a2", "m3"):
        _ouvrage(tmp_path, name)
    assert list_ouvrages(str(tmp_path)) == ["a2", "m3", "z1"]


def test_empty_referentiel(tmp_path):
    assert list_ouvrages(tmp_path) == []


def test_missing_referentiel_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_ouvrages(tmp_path / "absent")
