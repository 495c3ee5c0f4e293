"""Finding illustrations (section 3.3) and preparing them safely for WeasyPrint."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from pdfgen_pipeline.render import images
from pdfgen_pipeline.render.images import (
    AssetIndex,
    ImageError,
    numero_key,
    prepare_image,
    prepare_images,
    sanitize_svg,
)
from pdfgen_pipeline_tests.ci import in_ci

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
SVG_NS = "{http://www.w3.org/2000/svg}"
# outside CI only: in CI a missing tool is an install bug, and the tests fail on it
needs_gs = pytest.mark.skipif(shutil.which("gs") is None and not in_ci(), reason="ghostscript not installed")
needs_cairo = pytest.mark.skipif(shutil.which("pdftocairo") is None and not in_ci(),
                                 reason="poppler-utils not installed")


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- lookup ----------------------------------------------------------------------------------


@pytest.fixture
def referentiel(tmp_path: Path) -> Path:
    ref = tmp_path / "ref"
    o = ref / "c22"
    touch(o / "xml" / "document.xml")
    # ouvrage before commun, even when commun has a better (vector) format
    touch(o / "illustrations" / "eps" / "1.2.2.A.eps")
    touch(ref / "commun" / "illustrations" / "eps" / "1.2.2.A.svg")
    # only in commun, deep and prefixed
    touch(ref / "commun" / "in" / "illustrations" / "eps" / "inc22_3.1.B.eps")
    # vector preference within one tree, extension case-insensitive, prefixed names
    touch(o / "illustrations" / "png" / "4.1.C.png")
    touch(o / "illustrations" / "4.1.C.JPG")
    touch(o / "illustrations" / "eps" / "4.1.C.EPS")
    touch(o / "illustrations" / "svg" / "inc22_4.1.C.svg")
    touch(o / "illustrations" / "5.1.D.jpeg")
    touch(o / "illustrations" / "5.1.D.PNG")
    # hidden files and folders are ignored
    touch(o / "illustrations" / ".6.1.E.eps")
    touch(o / "illustrations" / ".trash" / "6.1.E.eps")
    # tables
    touch(o / "tableaux" / "inc22_2.3.T.xml")
    touch(o / "illustrations" / "2.3.T.png")
    return ref


def index(ref: Path, subdir: str = "illustrations") -> AssetIndex:
    return AssetIndex(ref / "c22", ref / "commun", subdir)


def test_numero_key() -> None:
    assert numero_key("1.2.2.A.") == "1.2.2.A"
    assert numero_key(" 1.2.2.A ") == "1.2.2.A"
    assert numero_key("1.2.2.A") == "1.2.2.A"


def test_ouvrage_before_commun(referentiel: Path) -> None:
    idx = index(referentiel)
    assert idx.find("1.2.2.A.") == (referentiel / "c22/illustrations/eps/1.2.2.A.eps").resolve()
    assert idx.candidates("1.2.2.A")[1] == (referentiel / "commun/illustrations/eps/1.2.2.A.svg").resolve()


def test_commun_any_subfolder_and_prefix(referentiel: Path) -> None:
    found = index(referentiel).find("3.1.B.")
    assert found == (referentiel / "commun/in/illustrations/eps/inc22_3.1.B.eps").resolve()


def test_vector_preference_and_extension_case(referentiel: Path) -> None:
    idx = index(referentiel)
    names = [p.name for p in idx.candidates("4.1.C.")]
    assert names == ["inc22_4.1.C.svg", "4.1.C.EPS", "4.1.C.png", "4.1.C.JPG"]
    assert idx.find("5.1.D").name == "5.1.D.PNG"


def test_final_dot_optional_and_missing(referentiel: Path) -> None:
    idx = index(referentiel)
    assert idx.find("3.1.B") == idx.find("3.1.B.") is not None
    assert idx.find("9.9.Z.") is None
    assert idx.find("") is None
    assert idx.find(".") is None


def test_hidden_names_ignored(referentiel: Path) -> None:
    assert index(referentiel).find("6.1.E.") is None


def test_tables_subdir(referentiel: Path) -> None:
    tables = index(referentiel, "tableaux")
    assert tables.find("2.3.T.").name == "inc22_2.3.T.xml"
    assert index(referentiel).find("2.3.T.").name == "2.3.T.png"  # images index never returns the xml


def test_exact_case_preferred(tmp_path: Path) -> None:
    o = tmp_path / "o"
    touch(o / "illustrations" / "1.a.svg")
    lower_only = AssetIndex(o, None)
    assert lower_only.find("1.A.").name == "1.a.svg"  # uploaded with another case: still found
    touch(o / "illustrations" / "1.A.png")
    both = AssetIndex(o, None)
    assert both.find("1.A.").name == "1.A.png"  # exact case wins over the better format


def test_symlinks_never_leave_the_tree(tmp_path: Path) -> None:
    secret = touch(tmp_path / "secret" / "7.1.F.svg")
    outside_dir = tmp_path / "secret"
    o = tmp_path / "o"
    (o / "illustrations").mkdir(parents=True)
    (o / "illustrations" / "7.1.F.svg").symlink_to(secret)
    (o / "illustrations" / "linked_dir").symlink_to(outside_dir, target_is_directory=True)
    inside = touch(o / "illustrations" / "real" / "7.2.G.eps")
    (o / "illustrations" / "7.3.H.eps").symlink_to(inside)
    idx = AssetIndex(o, None)
    assert idx.find("7.1.F.") is None
    assert any("outside" in w for w in idx.warnings)
    assert idx.find("7.3.H.") == inside.resolve()  # a link staying inside the tree is fine


def test_illustrations_folder_symlinked_outside_is_ignored(tmp_path: Path) -> None:
    touch(tmp_path / "elsewhere" / "8.1.A.png")
    o = tmp_path / "o"
    o.mkdir()
    (o / "illustrations").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    idx = AssetIndex(o, None)
    assert idx.find("8.1.A.") is None and idx.warnings


def test_index_walks_once(referentiel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_walk = os.walk

    def counting_walk(top, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(images.os, "walk", counting_walk)
    idx = index(referentiel)
    assert len(calls) == 2  # one walk of the ouvrage tree, one of commun
    for _ in range(200):
        idx.find("1.2.2.A.")
        idx.find("404.")
    assert len(calls) == 2
    assert len(idx) == 10


# -- preparation -----------------------------------------------------------------------------


def svg_root(work: Path, relpath: str) -> etree._Element:
    return etree.fromstring((work / relpath).read_bytes())


@needs_gs
@needs_cairo
def test_eps_becomes_svg_with_paths(tmp_path: Path) -> None:
    result = prepare_image(FIXTURES / "valid.eps", tmp_path, timeout_s=30)
    assert result.kind == "svg" and result.converted_from == "eps"
    assert result.relpath == "assets/img/valid.svg"
    root = svg_root(tmp_path, result.relpath)
    paths = [p for p in root.iter(f"{SVG_NS}path") if p.get("d", "").strip()]
    assert len(paths) >= 5  # rectangle, circle, triangle and the glyphs of the text
    assert result.width_pt == pytest.approx(200) and result.height_pt == pytest.approx(120)
    assert not result.warnings


@needs_gs
def test_gs_always_runs_with_dsafer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    real_run = images._run

    def spy(argv: list[str], cwd: Path, timeout_s: float) -> str:
        seen.append(argv)
        return real_run(argv, cwd, timeout_s)

    monkeypatch.setattr(images, "_run", spy)
    prepare_image(FIXTURES / "valid.eps", tmp_path, timeout_s=30)
    gs_calls = [a for a in seen if any(Path(x).name == "gs" for x in a)]
    assert gs_calls
    for argv in gs_calls:
        assert "-dSAFER" in argv and "-dNOSAFER" not in argv and "-dEPSCrop" in argv


@needs_gs
def test_infinite_loop_eps_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ImageError) as info:
        prepare_image(FIXTURES / "loop.eps", tmp_path, timeout_s=1.5)
    elapsed = time.monotonic() - start
    assert "loop.eps" in str(info.value)
    assert "timed out after 1.5 s" in str(info.value)
    assert elapsed < 10  # killed at the timeout, and no second (raster) attempt of 1.5 s more each
    assert not (tmp_path / "assets").exists()


@needs_gs
def test_memory_hungry_eps_hits_the_memory_limit(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        prepare_image(FIXTURES / "hog.eps", tmp_path, timeout_s=120)  # the memory limit stops it, not this
    message = str(info.value)
    assert message.startswith("hog.eps: ")
    assert f"memory limit of {images.MAX_TOOL_MEMORY_BYTES >> 20} MB hit" in message
    assert "raster" not in message  # no second attempt doomed the same way
    assert not (tmp_path / "assets").exists()


@needs_gs
def test_file_reading_eps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        prepare_image(FIXTURES / "readfile.eps", tmp_path, timeout_s=30)
    message = str(info.value)
    assert message.startswith("readfile.eps: ")
    assert "-dSAFER" in message and "invalidfileaccess" in message
    assert not (tmp_path / "assets").exists()


@needs_cairo
def test_pdf_page_one_becomes_svg(tmp_path: Path) -> None:
    result = prepare_image(FIXTURES / "onepage.pdf", tmp_path, timeout_s=30)
    assert result.kind == "svg" and result.converted_from == "pdf"
    assert list(svg_root(tmp_path, result.relpath).iter(f"{SVG_NS}path"))


@needs_gs
def test_raster_fallback_when_vector_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> images._Output:
        raise images._ToolFailed("pdftocairo crashed", "")

    monkeypatch.setattr(images, "_pdf_to_svg", broken)
    result = prepare_image(FIXTURES / "valid.eps", tmp_path, timeout_s=30)
    assert result.kind == "png" and result.converted_from == "eps"
    assert any("rasterized at 150 dpi" in w for w in result.warnings)
    with Image.open(tmp_path / result.relpath) as im:
        assert im.format == "PNG"
        assert im.size == (pytest.approx(200 * 150 / 72, abs=2), pytest.approx(120 * 150 / 72, abs=2))
    assert result.width_pt == pytest.approx(200, abs=1)


def test_png_and_jpeg_copied_verbatim(tmp_path: Path) -> None:
    png = prepare_image(FIXTURES / "small.png", tmp_path)
    jpeg = prepare_image(FIXTURES / "small.jpg", tmp_path)
    assert (png.kind, png.relpath, png.converted_from) == ("png", "assets/img/small.png", None)
    assert (jpeg.kind, jpeg.relpath) == ("jpeg", "assets/img/small.jpg")
    assert (tmp_path / png.relpath).read_bytes() == (FIXTURES / "small.png").read_bytes()
    assert (tmp_path / jpeg.relpath).read_bytes() == (FIXTURES / "small.jpg").read_bytes()
    assert png.width_pt == pytest.approx(40 * 72 / 96, rel=1e-3)  # the PNG says 96 dpi


def test_corrupt_png_raises_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        prepare_image(FIXTURES / "corrupt.png", tmp_path)
    assert str(info.value).startswith("corrupt.png: ")
    assert info.value.file.name == "corrupt.png"
    assert "corrupt" in info.value.reason


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.png: file not found"):
        prepare_image(tmp_path / "nope.png", tmp_path)
    with pytest.raises(ImageError, match="unrecognized image format"):
        prepare_image(touch(tmp_path / "x.eps", b"GIF89a..."), tmp_path)


def test_decompression_bomb_protection_stays_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40x24 = 960 > 2 x 100
    with pytest.raises(ImageError, match="decompression bomb"):
        prepare_image(FIXTURES / "small.png", tmp_path)


def test_extension_mismatch_is_sniffed(tmp_path: Path) -> None:
    fake = tmp_path / "src" / "9.1.A.eps"
    touch(fake, (FIXTURES / "small.png").read_bytes())
    result = prepare_image(fake, tmp_path / "work")
    assert result.kind == "png" and result.relpath == "assets/img/9.1.A.png"
    assert any("PNG despite its extension .eps" in w for w in result.warnings)


# -- SVG sanitizing --------------------------------------------------------------------------


def test_svg_script_foreignobject_handlers_removed(tmp_path: Path) -> None:
    result = prepare_image(FIXTURES / "script.svg", tmp_path)
    assert result.kind == "svg" and result.converted_from is None
    out = (tmp_path / result.relpath).read_bytes()
    root = etree.fromstring(out)
    assert not list(root.iter(f"{SVG_NS}script"))
    assert not list(root.iter(f"{SVG_NS}foreignObject"))
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on")]
    assert b"alert" not in out and b"javascript" not in out and b"html inside" not in out
    assert list(root.iter(f"{SVG_NS}rect"))  # the drawing is kept
    assert any("<script>" in w for w in result.warnings)


def test_svg_file_href_removed(tmp_path: Path) -> None:
    result = prepare_image(FIXTURES / "file_href.svg", tmp_path)
    out = (tmp_path / result.relpath).read_bytes()
    assert b"/etc/passwd" not in out and b"/etc/shadow" not in out
    assert any("file:///etc/passwd" in w for w in result.warnings)


def test_svg_ssrf_references_removed(tmp_path: Path) -> None:
    result = prepare_image(FIXTURES / "ssrf.svg", tmp_path)
    out = (tmp_path / result.relpath).read_bytes()
    assert b"169.254" not in out and b"@import" not in out
    assert len([w for w in result.warnings if "169.254.169.254" in w]) == 5


def test_svg_local_references_kept(tmp_path: Path) -> None:
    data = (FIXTURES / "clean.svg").read_bytes()
    data = data.replace(
        b"</svg>", b'<image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/></svg>'
    )
    clean, warnings = sanitize_svg(data, "clean.svg")
    assert not warnings
    root = etree.fromstring(clean)
    use = next(root.iter(f"{SVG_NS}use"))
    assert use.get("{http://www.w3.org/1999/xlink}href") == "#mark"
    assert next(root.iter(f"{SVG_NS}rect")).get("fill") == "url(#g1)"
    assert next(root.iter(f"{SVG_NS}image")).get("href", "").startswith("data:image/png")
    assert "Pointe du Fixture" in "".join(root.itertext())


def test_svg_hardened_parser_refuses_entities() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'
    )
    with pytest.raises(ImageError, match=r"evil\.svg: invalid SVG"):
        sanitize_svg(evil, "evil.svg")


def test_svg_plain_public_doctype_accepted() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="5mm">'
        b'<rect width="1" height="1"/></svg>'
    )
    clean, _ = sanitize_svg(data, "illustrator.svg")
    assert b"DOCTYPE" not in clean and b"<rect" in clean


def test_svg_data_svg_and_animation_links_removed() -> None:
    data = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        b'<image xlink:href="data:image/svg+xml;base64,PHN2Zy8+"/>'
        b'<a><set attributeName="href" to="http://169.254.169.254/"/><rect width="1" height="1"/></a>'
        b"<?xml-stylesheet href='http://169.254.169.254/s.css'?></svg>"
    )
    clean, warnings = sanitize_svg(data, "anim.svg")
    assert b"svg+xml" not in clean and b"169.254" not in clean and b"<set" not in clean
    assert len(warnings) == 2


# -- cache and batches -----------------------------------------------------------------------


@needs_gs
@needs_cairo
def test_conversion_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = prepare_image(FIXTURES / "valid.eps", tmp_path / "w1", cache_dir=cache, timeout_s=30)
    assert not first.from_cache

    def no_tools(*args: object, **kwargs: object) -> str:
        raise AssertionError("converted twice")

    monkeypatch.setattr(images, "_run", no_tools)
    copy = touch(tmp_path / "other" / "inc22_1.2.2.A.eps", (FIXTURES / "valid.eps").read_bytes())
    second = prepare_image(copy, tmp_path / "w2", cache_dir=cache, timeout_s=30)
    assert second.from_cache and second.relpath == "assets/img/inc22_1.2.2.A.svg"
    assert (tmp_path / "w2" / second.relpath).read_bytes() == (tmp_path / "w1" / first.relpath).read_bytes()


def test_same_name_different_content_does_not_overwrite(tmp_path: Path) -> None:
    a = touch(tmp_path / "a" / "1.A.png", (FIXTURES / "small.png").read_bytes())
    other = Image.new("RGB", (3, 3), "blue")
    other.save(tmp_path / "b.png")
    b = touch(tmp_path / "b" / "1.A.png", (tmp_path / "b.png").read_bytes())
    ra, rb = prepare_image(a, tmp_path / "w"), prepare_image(b, tmp_path / "w")
    assert ra.relpath != rb.relpath
    assert (tmp_path / "w" / ra.relpath).read_bytes() == a.read_bytes()
    assert (tmp_path / "w" / rb.relpath).read_bytes() == b.read_bytes()


@needs_gs
@needs_cairo
def test_prepare_images_collects_results_and_errors(tmp_path: Path) -> None:
    paths = [FIXTURES / n for n in ("valid.eps", "small.png", "corrupt.png", "loop.eps", "script.svg")]
    report = prepare_images([*paths, FIXTURES / "small.png"], tmp_path, workers=3, timeout_s=1.5)
    assert set(report.results) == {FIXTURES / n for n in ("valid.eps", "small.png", "script.svg")}
    assert set(report.errors) == {FIXTURES / "corrupt.png", FIXTURES / "loop.eps"}
    assert "timed out" in str(report.errors[FIXTURES / "loop.eps"])
    assert report.results[FIXTURES / "valid.eps"].kind == "svg"


@needs_gs
@needs_cairo
def test_prepared_eps_renders_in_the_sandbox_as_vector(tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from weasyprint import HTML

    from pdfgen_pipeline.render.fetcher import SandboxedURLFetcher

    result = prepare_image(FIXTURES / "valid.eps", tmp_path, timeout_s=30)
    fetcher = SandboxedURLFetcher(tmp_path)
    html = f'<p>Figure</p><img src="{result.relpath}" style="width: {result.width_pt}pt">'
    pdf = HTML(string=html, base_url=str(tmp_path) + "/", url_fetcher=fetcher).write_pdf()
    assert not fetcher.refusals and fetcher.served == [(tmp_path / result.relpath).resolve()]
    page = pdfium.PdfDocument(pdf)[0]
    kinds = [obj.type for obj in page.get_objects(max_depth=8)]
    assert kinds.count(pdfium_c.FPDF_PAGEOBJ_PATH) >= 3  # drawn as vector paths, not a bitmap
    assert pdfium_c.FPDF_PAGEOBJ_IMAGE not in kinds
