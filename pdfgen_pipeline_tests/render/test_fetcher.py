"""The WeasyPrint sandbox: only files inside the work directory and data: URLs are read."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pdfplumber
import pikepdf
import pytest
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetchingError, fetch

from pdfgen_pipeline.render.fetcher import SandboxedURLFetcher, SandboxRefusal, deny_all_fetcher

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
PNG_BYTES = (FIXTURES / "small.png").read_bytes()
DATA_PNG = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/root/{inside.png, style.css, note.txt, escape.png -> ../outside.png}, tmp/outside.png."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "inside.png").write_bytes(PNG_BYTES)
    (root / "style.css").write_text("p.marked { color: rgb(255, 0, 0); }")
    (root / "note.txt").write_text("an attachment")
    (tmp_path / "outside.png").write_bytes(PNG_BYTES)
    (root / "escape.png").symlink_to(tmp_path / "outside.png")
    (root / "sub").mkdir()
    (root / "sub" / "ok.png").symlink_to(root / "inside.png")  # symlink staying inside: fine
    return root


def image_count(pdf: bytes) -> int:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return sum(len(page.images) for page in doc.pages)


def refused(fetcher: SandboxedURLFetcher) -> dict[str, str]:
    return dict(fetcher.refusals)


HOSTILE_HTML = """<html><body><p>images</p>
<img src="file:///etc/passwd">
<img src="../outside.png">
<img src="http://127.0.0.1:9/x.png">
<img src="inside.png">
</body></html>"""


def test_weasyprint_refuses_outside_resources_and_embeds_inside_image(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree)
    pdf = HTML(string=HOSTILE_HTML, base_url=str(tree) + "/", url_fetcher=fetcher).write_pdf()

    assert pdf.startswith(b"%PDF")
    reasons = refused(fetcher)
    outside_url = (tree.parent / "outside.png").as_uri()
    assert set(reasons) == {"file:///etc/passwd", outside_url, "http://127.0.0.1:9/x.png"}
    assert "outside the work directory" in reasons["file:///etc/passwd"]
    assert "outside the work directory" in reasons[outside_url]
    assert "http" in reasons["http://127.0.0.1:9/x.png"]
    assert fetcher.served == [tree / "inside.png"]
    assert image_count(pdf) == 1
    assert len(fetcher.warnings()) == 3 and all("resource refused" in w for w in fetcher.warnings())


def test_control_default_fetcher_would_embed_the_outside_image(tree: Path) -> None:
    """Proves the image count above detects an escape: without the sandbox, 2 images get in."""
    pdf = HTML(string=HOSTILE_HTML, base_url=str(tree) + "/", url_fetcher=URLFetcher(timeout=2)).write_pdf()
    assert image_count(pdf) == 2


def test_symlink_escaping_the_root_is_refused(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree)
    html = '<img src="escape.png"><img src="sub/ok.png">'
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=fetcher).write_pdf()
    reasons = refused(fetcher)
    assert "symbolic link" in reasons[(tree / "escape.png").as_uri()]
    assert image_count(pdf) == 1  # sub/ok.png points inside the root


def test_root_given_through_a_symlink_is_resolved(tree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    fetcher = SandboxedURLFetcher(alias)
    assert fetcher.root == tree.resolve()
    pdf = HTML(string='<img src="inside.png">', base_url=str(alias) + "/", url_fetcher=fetcher).write_pdf()
    assert image_count(pdf) == 1 and not fetcher.refusals


def test_stylesheets_inside_served_http_stylesheet_refused(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree)
    html = (
        '<html><head><link rel="stylesheet" href="style.css">'
        '<link rel="stylesheet" href="https://example.invalid/s.css"></head>'
        '<body><p class="marked">Baie</p></body></html>'
    )
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=fetcher).write_pdf()
    assert tree / "style.css" in fetcher.served
    assert "scheme 'https'" in refused(fetcher)["https://example.invalid/s.css"]
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        colors = {c.get("non_stroking_color") for c in doc.pages[0].chars}
    assert colors == {(1.0, 0.0, 0.0)}  # the local CSS applied


def test_attachments_are_refused(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree)
    html = (
        '<html><head><link rel="attachment" href="note.txt"></head>'
        '<body><a rel="attachment" href="inside.png">file</a></body></html>'
    )
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=fetcher).write_pdf()
    reasons = refused(fetcher)
    assert "attachment" in reasons[(tree / "note.txt").as_uri()]
    assert "attachment" in reasons[(tree / "inside.png").as_uri()]
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert "/EmbeddedFiles" not in doc.Root.get("/Names", {})
        assert not doc.attachments


def test_control_default_fetcher_embeds_attachments(tree: Path) -> None:
    html = '<html><head><link rel="attachment" href="note.txt"></head><body>x</body></html>'
    pdf = HTML(string=html, base_url=str(tree) + "/").write_pdf()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.attachments) == 1


def test_data_urls_allowed_and_deny_all(tree: Path) -> None:
    html = f'<img src="{DATA_PNG}"><img src="inside.png">'
    fetcher = SandboxedURLFetcher(tree)
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=fetcher).write_pdf()
    assert image_count(pdf) == 2 and not fetcher.refusals

    deny = deny_all_fetcher()
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=deny).write_pdf()
    assert image_count(pdf) == 0
    assert len(deny.refusals) == 2

    deny_but_data = deny_all_fetcher(allow_data=True)
    pdf = HTML(string=html, base_url=str(tree) + "/", url_fetcher=deny_but_data).write_pdf()
    assert image_count(pdf) == 1
    assert list(refused(deny_but_data)) == [(tree / "inside.png").as_uri()]


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://127.0.0.1/x.png", "scheme 'ftp'"),
        ("https://169.254.169.254/latest/meta-data/", "scheme 'https'"),
        ("gopher://127.0.0.1:70/x", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("file://evil.example/etc/passwd", "another host"),
        ("file:///etc/passwd", "outside"),
        ("{root}/%2e%2e/outside.png", "outside"),
        ("{root}/missing.png", "not found"),
        ("{root}/sub", "not a regular file"),
    ],
)
def test_direct_refusals(tree: Path, url: str, reason: str) -> None:
    fetcher = SandboxedURLFetcher(tree)
    url = url.replace("{root}", tree.as_uri())
    with pytest.raises(SandboxRefusal) as info:
        fetcher.fetch(url)
    assert reason in str(info.value)
    assert fetcher.refusals == [(url, fetcher.refusals[0][1])] and reason in fetcher.refusals[0][1]
    # through WeasyPrint's own wrapper: a plain (non-fatal) fetching error, the resource is skipped
    with pytest.raises(URLFetchingError), fetch(fetcher, url):
        pass


def test_refusal_is_not_fatal() -> None:
    assert not issubclass(SandboxRefusal, FatalURLFetchingError)
    assert issubclass(SandboxRefusal, Exception)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_inside_root_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe.png")
    fetcher = SandboxedURLFetcher(tree)
    with pytest.raises(SandboxRefusal, match="not a regular file"):
        fetcher.fetch((tree / "pipe.png").as_uri())


def test_served_file_content_and_type(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree)
    response = fetcher.fetch((tree / "inside.png").as_uri() + "?v=1#frag")
    try:
        assert response.read() == PNG_BYTES
        assert response.content_type == "image/png"
    finally:
        response.close()


def test_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SandboxedURLFetcher(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        SandboxedURLFetcher(tmp_path / "f")


def test_large_file_refused(tree: Path) -> None:
    fetcher = SandboxedURLFetcher(tree, max_file_bytes=10)
    with pytest.raises(SandboxRefusal, match="too large"):
        fetcher.fetch((tree / "inside.png").as_uri())
