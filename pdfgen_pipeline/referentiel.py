"""The referentiel (input) layout, section 1 of the reference: which folders are ouvrages, their
source versions, and a snapshot of one ouvrage with the `commun/` files it uses."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError, validate_ouvrage_key
from pdfgen_pipeline.stores.base import ObjectInfo, Store, download_prefix, hash_stream

#: Top-level folders that are never ouvrages.
NOT_OUVRAGES = frozenset({"commun", "source", "Fichiers_communs"})
COMMUN = "commun"
MAIN_XML = "xml/document.xml"
SNAPSHOT_MANIFEST = "snapshot.json"


def list_ouvrages(referentiel: Path) -> list[str]:
    """Keys of the top-level folders of a local referentiel that have `xml/document.xml` (dot-folders,
    `commun/`, `source/`, `Fichiers_communs/` and unsafe names are skipped), sorted."""
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


@dataclass
class OuvrageListing:
    """The objects of one ouvrage in a referentiel listing, and what they say of its version."""

    key: str
    objects: list[ObjectInfo] = field(default_factory=list)

    @property
    def document(self) -> ObjectInfo | None:
        """`xml/document.xml`, if present."""
        return next((o for o in self.objects if o.key == f"{self.key}/{MAIN_XML}"), None)

    @property
    def version(self) -> str:
        """Source version: a hash of the ouvrage's keys and ETags (changes when any file changes)."""
        h = hashlib.sha256()
        for o in sorted(self.objects, key=lambda o: o.key):
            h.update(f"{o.key}\0{o.etag}\0{o.size}\n".encode())
        return h.hexdigest()[:16]


@dataclass
class ReferentielScan:
    """One listing of a referentiel, grouped by ouvrage."""

    ouvrages: dict[str, OuvrageListing]
    ignored: list[str]  # top-level names that are not ouvrages or have unsafe names
    objects: int

    def versions(self) -> dict[str, str]:
        return {k: o.version for k, o in self.ouvrages.items()}


def visible(key: str) -> bool:
    """False for files and folders whose name starts with `.` (`.DS_Store`, `._x.eps`, `.git/`)."""
    return not any(part.startswith(".") for part in key.split("/"))


def group_listing(objects: Iterable[ObjectInfo]) -> ReferentielScan:
    """Group a recursive listing by top-level folder; keep the folders that have `xml/document.xml`."""
    groups: dict[str, list[ObjectInfo]] = {}
    ignored: set[str] = set()
    count = 0
    for o in objects:
        count += 1
        top, sep, rest = o.key.partition("/")
        if not sep or top in NOT_OUVRAGES or top.startswith("."):
            continue
        if not visible(rest):
            continue
        groups.setdefault(top, []).append(o)
    ouvrages = {}
    for top, objs in groups.items():
        if not any(o.key == f"{top}/{MAIN_XML}" for o in objs):
            ignored.add(top)
            continue
        try:
            validate_ouvrage_key(top)
        except InvalidKeyError:
            ignored.add(top)
            continue
        ouvrages[top] = OuvrageListing(top, objs)
    return ReferentielScan(dict(sorted(ouvrages.items())), sorted(ignored), count)


def scan_referentiel(store: Store) -> ReferentielScan:
    """List the whole referentiel once (paginated) and group it by ouvrage."""
    return group_listing(store.list(""))


# ----------------------------------------------------------------------------- snapshots

_IMAGE_EXT = {"svg", "pdf", "eps", "epsf", "ps", "png", "jpg", "jpeg"}
_TABLE_EXT = {"xml", "fods"}
_NUMERO_REF = re.compile(rb"<(illustration|tableau)\b[^>]*>.*?<numero>\s*([^<]+?)\s*</numero>", re.S)


def commun_keys_for(numeros: set[str], commun_objects: Iterable[ObjectInfo]) -> list[str]:
    """Keys of `commun/` files whose name designates one of `numeros` (`1.2.A` or `<prefix>_1.2.A`)."""
    wanted = {n.lower() for n in numeros}
    keys = []
    for o in commun_objects:
        name = o.key.rsplit("/", 1)[-1]
        if name.startswith(".") or "." not in name:
            continue
        stem, ext = name.rsplit(".", 1)
        if ext.lower() not in _IMAGE_EXT | _TABLE_EXT:
            continue
        if stem.rpartition("_")[2].lower() in wanted:
            keys.append(o.key)
    return sorted(keys)


def referenced_numeros(xml_files: Iterable[Path]) -> set[str]:
    """Numeros of every `illustration` and `tableau` of the documents (a byte scan: cheap, no entity)."""
    out: set[str] = set()
    for f in xml_files:
        data = f.read_bytes()
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            data = data.decode("utf-16").encode("utf-8")
        for _kind, numero in _NUMERO_REF.findall(data):
            out.add(numero.decode("utf-8", "replace").strip().rstrip("."))
    return out


@dataclass
class Snapshot:
    """A copy of one ouvrage (+ the `commun/` files it uses) in a local folder."""

    key: str
    root: Path  # <root>/<key>/... and <root>/commun/...
    files: list[str]
    commun_files: list[str]
    content_hash: str
    source_version: str  # from the listing's ETags (what the sensor compares)
    bytes: int

    @property
    def ouvrage_dir(self) -> Path:
        return self.root / self.key

    @property
    def commun_dir(self) -> Path:
        return self.root / COMMUN


def content_hash(root: Path) -> str:
    """sha256 over the relative paths and contents of every file below `root`."""
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            hash_stream(h, f)
        h.update(b"\n")
    return h.hexdigest()[:16]


def snapshot_ouvrage(store: Store, key: str, dest: Path) -> Snapshot:
    """Copy ouvrage `key` of the referentiel `store` and the `commun/` files it refers to into `dest`."""
    key = validate_ouvrage_key(key)
    listing = OuvrageListing(key, [o for o in store.list(f"{key}/") if visible(o.key)])
    if listing.document is None:
        raise FileNotFoundError(f"{store.location(key + '/' + MAIN_XML)}: missing: an ouvrage needs {MAIN_XML}")
    copied = download_prefix(store, key, dest / key, skip=lambda rel: not visible(rel))
    numeros = referenced_numeros((dest / key / "xml").glob("*.xml"))
    local = {p.stem.rpartition("_")[2].lower() for p in (dest / key).rglob("*") if p.is_file()}
    needed = {n for n in numeros if n.lower() not in local}
    commun = commun_keys_for(needed, store.list(f"{COMMUN}/")) if needed else []
    for k in commun:
        store.download_file(k, dest / k)
    files = sorted(o.key for o in copied)
    chash = content_hash(dest)  # the ouvrage and its commun/ files, before snapshot.json is written
    manifest = {"key": key, "store": store.url, "files": files, "commun": commun, "version": listing.version,
                "content_hash": chash}
    (dest / SNAPSHOT_MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
    return Snapshot(key=key, root=dest, files=files, commun_files=commun, content_hash=chash,
                    source_version=listing.version, bytes=sum(o.size for o in copied))


def newest(objects: Iterable[ObjectInfo]) -> datetime | None:
    """The latest modification time among `objects`."""
    return max((o.last_modified for o in objects), default=None)
