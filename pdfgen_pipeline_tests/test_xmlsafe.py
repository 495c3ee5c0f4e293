"""Hardened XML parsing (`pdfgen_pipeline.xmlsafe`): every refusal is an `XmlInputError` naming
the file, the line and column when known, and the reason; nothing is ever fetched or expanded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pdfgen_pipeline.ouvrage.loader import load_document
from pdfgen_pipeline.xmlsafe import MAX_DEPTH, XmlInputError, parse_xml_bytes, parse_xml_file
from pdfgen_pipeline_tests.hostile.watch import Listener

OPENOFFICE_DOCTYPE = (b'<!DOCTYPE office:document PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" '
                      b'"office.dtd">')


def _write(tmp_path: Path, data: bytes, name: str = "input.xml") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _refused(path: Path, **kw) -> XmlInputError:
    with pytest.raises(XmlInputError) as info:
        parse_xml_file(path, **kw)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.file == str(path)
    assert str(err).startswith(f"{path}")
    return err


def _located(err: XmlInputError, path: Path) -> None:
    """`str()` is `file:line:column: reason`, on one line."""
    assert err.line is not None and err.column is not None, str(err)
    assert str(err).startswith(f"{path}:{err.line}:{err.column}: "), str(err)
    assert str(err).endswith(err.reason)
    assert "\n" not in str(err)


# --------------------------------------------------------------------------- malformed input


def test_malformed_xml_names_file_line_column_and_reason(tmp_path):
    p = _write(tmp_path, b'<?xml version="1.0" encoding="UTF-8"?>\n<a>\n  <b>text\n</a>\n')
    err = _refused(p)
    _located(err, p)
    assert err.line == 4
    assert "malformed XML" in err.reason
    assert "mismatch" in err.reason and "b line 3" in err.reason
    # the location is given once, in our own format, not repeated by lxml's ", line N, column M"
    assert ", line 4" not in str(err)
    assert "Traceback" not in str(err)


def test_truncated_file(tmp_path):
    good = b'<?xml version="1.0" encoding="UTF-8"?>\n<document>\n  <ouvrage>\n    <chapitre>\n'
    p = _write(tmp_path, good)
    err = _refused(p)
    _located(err, p)
    assert err.line >= 4
    assert "malformed XML" in err.reason
    assert "end of data" in err.reason.lower()


def test_declared_utf8_with_latin1_bytes_is_refused(tmp_path):
    data = '<?xml version="1.0" encoding="UTF-8"?>\n<a>Île d’Ouessant, côté é</a>\n'.replace("’", "'")
    p = _write(tmp_path, data.encode("latin-1"))
    err = _refused(p)
    _located(err, p)
    assert err.line == 2
    assert "encoding" in err.reason.lower()


def test_declared_utf16_with_utf8_bytes_is_refused(tmp_path):
    p = _write(tmp_path, '<?xml version="1.0" encoding="UTF-16"?>\n<a>Île Vierge</a>\n'.encode())
    err = _refused(p)
    assert err.line == 1
    assert str(err).startswith(f"{p}:1")


def test_declared_utf16_with_utf8_bytes_reason_is_about_the_encoding(tmp_path):
    p = _write(tmp_path, '<?xml version="1.0" encoding="UTF-16"?>\n<a>Île Vierge</a>\n'.encode())
    err = _refused(p)
    assert "encoding" in err.reason.lower() or "utf-16" in err.reason.lower(), err.reason


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_refused_with_a_clear_message(tmp_path, codec):
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<a>Île Vierge</a>\n'
    p = _write(tmp_path, text.encode(codec))
    err = _refused(p)
    assert err.line == 1
    assert "UTF-16" in err.reason and "BOM" in err.reason
    assert "\n" not in str(err)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_accepted(tmp_path, codec):
    text = ('\ufeff<?xml version="1.0" encoding="UTF-16"?>\r\n'
            '<a n="Œ">Île Vierge\u00a0: 48° 38′ N — l’Aber-Wrac’h</a>\r\n')
    p = _write(tmp_path, text.encode(codec))
    root = parse_xml_file(p).getroot()
    assert root.tag == "a"
    assert root.get("n") == "Œ"
    assert root.text == "Île Vierge\u00a0: 48° 38′ N — l’Aber-Wrac’h"


def test_utf8_with_bom_and_no_declaration_is_accepted(tmp_path):
    p = _write(tmp_path, "\ufeff<a>Écrehou</a>".encode())
    assert parse_xml_file(p).getroot().text == "Écrehou"


def test_nul_byte_is_refused_with_location(tmp_path):
    p = _write(tmp_path, b"<a>\n  x\x00y\n</a>\n")
    err = _refused(p)
    assert err.line == 2
    assert "malformed XML" in err.reason


def test_nul_byte_error_is_one_line(tmp_path):
    p = _write(tmp_path, b"<a>\n  x\x00y\n</a>\n")
    err = _refused(p)
    assert "\n" not in str(err), repr(str(err))


# --------------------------------------------------------------------------- hostile DTDs


def _passwd_lines() -> list[str]:
    try:
        text = Path("/etc/passwd").read_text("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if len(line) > 8][:5]


def test_xxe_is_refused_and_never_leaks_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN-7f3a9c-never-print-me\n", "utf-8")
    leaks = ["TOKEN-7f3a9c", *_passwd_lines()]
    for target in ("file:///etc/passwd", secret.as_uri()):
        for body in ("<a>&xxe;</a>", '<a b="&xxe;">x</a>'):
            data = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<!DOCTYPE a [<!ENTITY xxe SYSTEM "{target}">]>\n{body}\n').encode()
            p = _write(tmp_path, data)
            err = _refused(p)
            if body == "<a>&xxe;</a>":
                assert "DOCTYPE" in err.reason and err.line == 1
            for leak in leaks:
                assert leak not in str(err)
                assert leak not in repr(err.args)


def test_xxe_in_an_ouvrage_document_is_refused_without_leak(tmp_path):
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<!DOCTYPE document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            b'<document><ouvrage><chapitre><titre><numero>1.</numero><texte><txt>&xxe;</txt></texte></titre>'
            b'</chapitre></ouvrage></document>\n')
    p = _write(tmp_path, data, "document.xml")
    with pytest.raises(XmlInputError) as info:
        load_document(p)
    for leak in _passwd_lines():
        assert leak not in str(info.value)


def test_parameter_entity_is_refused(tmp_path):
    p = _write(tmp_path, b'<!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n<a>x</a>\n')
    err = _refused(p)
    for leak in _passwd_lines():
        assert leak not in str(err)


def test_billion_laughs_is_refused(tmp_path):
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    data = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(entities) + "\n]>\n<lolz>&lol9;</lolz>\n")
    p = _write(tmp_path, data.encode())
    err = _refused(p)
    assert err.line is not None
    assert "lol" not in err.reason  # no expanded text in the message


def test_billion_laughs_padded_past_the_huge_tree_threshold_is_refused():
    # files over 8 MB are parsed with huge_tree=True, which lifts some of libxml2's limits
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = ('<!DOCTYPE z [<!ENTITY l0 "lol">' + entities + "]><z>&l9;<!--" + "x" * 8_100_000 + "--></z>").encode()
    with pytest.raises(XmlInputError):
        parse_xml_bytes(data, "padded.xml")


@pytest.mark.parametrize("public", [False, True])
def test_external_dtd_is_never_fetched(tmp_path, public):
    with Listener() as listener:
        url = f"http://127.0.0.1:{listener.port}/x.dtd"
        doctype = f'PUBLIC "-//X//DTD X//EN" "{url}"' if public else f'SYSTEM "{url}"'
        p = _write(tmp_path, f'<?xml version="1.0"?>\n<!DOCTYPE a {doctype}>\n<a>x</a>\n'.encode())
        try:
            tree = parse_xml_file(p)
        except XmlInputError:
            pass  # refusing is fine too, fetching is not
        else:
            assert tree.getroot().text == "x"
    assert listener.connections == 0


def test_xml_stylesheet_and_schema_location_are_not_followed(tmp_path):
    with Listener() as listener:
        url = f"http://127.0.0.1:{listener.port}"
        data = (f'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="{url}/d.xsl"?>\n'
                f'<document xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:noNamespaceSchemaLocation="{url}/d.xsd"><ouvrage/></document>\n').encode()
        tree = parse_xml_file(_write(tmp_path, data))
        assert tree.getroot().tag == "document"
    assert listener.connections == 0


def test_bare_openoffice_doctype_is_accepted(tmp_path):
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n' + OPENOFFICE_DOCTYPE + b"\n"
            b'<office:document xmlns:office="http://openoffice.org/2000/office" office:class="spreadsheet">'
            b"<office:body>Tableau</office:body></office:document>\n")
    root = parse_xml_file(_write(tmp_path, data)).getroot()
    assert root.tag == "{http://openoffice.org/2000/office}document"
    assert "".join(root.itertext()) == "Tableau"
    assert not (tmp_path / "office.dtd").exists()


def test_real_openoffice_table_of_the_sample_is_accepted(referentiel):
    path = referentiel / "lf1" / "tableaux" / "1.2.xml"
    assert OPENOFFICE_DOCTYPE in path.read_bytes()[:400]
    assert parse_xml_file(path).getroot().get("{http://openoffice.org/2000/office}class") == "spreadsheet"


# --------------------------------------------------------------------------- limits and files


def test_file_over_the_size_limit_is_refused(tmp_path):
    data = b"<a>" + b"x" * 200 + b"</a>"
    p = _write(tmp_path, data)
    err = _refused(p, max_bytes=100)
    assert "too large" in err.reason
    assert str(len(data)) in err.reason and "100" in err.reason
    with pytest.raises(XmlInputError, match="too large"):
        parse_xml_bytes(data, p, max_bytes=100)
    # at the limit exactly, it is read
    assert parse_xml_file(p, max_bytes=len(data)).getroot().text == "x" * 200


def test_ten_thousand_nested_elements_are_refused(tmp_path):
    p = _write(tmp_path, b"<a>" * 10_000 + b"x" + b"</a>" * 10_000)
    err = _refused(p)
    assert re.search(r"depth|nest", err.reason, re.IGNORECASE), err.reason
    assert "\n" not in str(err)


def test_deep_nesting_in_a_huge_file_is_refused_by_our_own_check():
    # over 8 MB, libxml2 runs with huge_tree (depth limit 2048): our MAX_DEPTH check must still apply
    depth = MAX_DEPTH + 20
    data = b"<a>" * depth + b"x" * 8_100_000 + b"</a>" * depth
    with pytest.raises(XmlInputError) as info:
        parse_xml_bytes(data, "huge.xml")
    assert re.search(r"depth|nest", info.value.reason, re.IGNORECASE)
    assert str(MAX_DEPTH) in info.value.reason


def test_nesting_within_the_limit_is_accepted(tmp_path):
    depth = MAX_DEPTH - 10
    p = _write(tmp_path, b"<a>" * depth + b"x" + b"</a>" * depth)
    root = parse_xml_file(p).getroot()
    assert sum(1 for _ in root.iter()) == depth


@pytest.mark.parametrize("data", [b"", b"   \r\n\t\n"], ids=["empty", "blank"])
def test_empty_file_is_refused(tmp_path, data):
    p = _write(tmp_path, data)
    err = _refused(p)
    assert "empty" in err.reason


def test_missing_file_is_an_xml_input_error(tmp_path):
    p = tmp_path / "nope" / "document.xml"
    err = _refused(p)
    assert "not found" in err.reason
    assert str(err) == f"{p}: file not found"


def test_directory_is_an_xml_input_error(tmp_path):
    d = tmp_path / "document.xml"
    d.mkdir()
    err = _refused(d)
    assert "directory" in err.reason


def test_str_without_line_has_no_dangling_colon():
    err = XmlInputError("f.xml", "empty file")
    assert str(err) == "f.xml: empty file"
    assert (err.file, err.line, err.column, err.reason) == ("f.xml", None, None, "empty file")
    assert str(XmlInputError("f.xml", "bad", 3)) == "f.xml:3: bad"
    assert str(XmlInputError("f.xml", "bad", 3, 7)) == "f.xml:3:7: bad"
