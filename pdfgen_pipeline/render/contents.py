"""Contents page numbers of the long-book path, written into the front matter after its layout.

With `stamps.LEADERS_CSS` an entry's page number is absolutely positioned at the right end of the
entry's last line: its text changes no other box. So the front matter is laid out while the body is
(its numbers unknown, a placeholder in each), and once the body's pages are known `set_numbers`
writes each number into its laid-out text box, right-aligned where the placeholder was: WeasyPrint
draws it in its place in the text layer (the entry reads "title number"). The widths come from
Pango, as WeasyPrint measures text.
"""

from __future__ import annotations

from weasyprint.text.line_break import Layout, line_size

#: What each contents number holds while the front matter is laid out before the numbers are known.
PLACEHOLDER = "0"


def _classes(box) -> list[str]:
    element = getattr(box, "element", None)
    return (element.get("class") or "").split() if element is not None else []


def _number_boxes(page_box):
    """(the absolutely positioned `.pn` box, its text box) of each contents entry of a page."""
    stack = [page_box]
    while stack:
        box = stack.pop()
        name = type(box).__name__
        if name not in ("TextBox", "LineBox") and "pn" in _classes(box):
            text = next((d for d in box.descendants() if type(d).__name__ == "TextBox"), None)
            if text is not None:
                yield box, text
            continue
        stack.extend(getattr(box, "children", ()))


def text_width(text: str, style) -> float:
    """The width of `text` in `style` (CSS px), measured by Pango as in WeasyPrint's layout."""
    if not text:
        return 0.0
    layout = Layout(style)
    layout.set_text(text)
    line, _index = layout.get_first_line()
    return line_size(line, style)[0]


def set_numbers(pages, numbers: dict[str, int]) -> int:
    """Write in the laid-out `pages` each contents entry's page number (`numbers`: target → page; the `.pn`
    element's `data-target`), right-aligned where its placeholder ends, and move its link area; returns how
    many targets have no number (left empty)."""
    missing = 0
    for page in pages:
        moved = {}  # the moved boxes (placeholders unwrapped): their link areas change
        for box, text in _number_boxes(page._page_box):
            number = numbers.get(box.element.get("data-target"))
            missing += number is None
            value = "" if number is None else str(number)
            width = text_width(value, text.style)
            box.translate(dx=box.width - width)  # its right edge where the entry's padding ends
            for b in (box, *box.descendants()):
                if b is box or type(b).__name__ in ("TextBox", "LineBox"):
                    b.width = width
            text.text = value
            text.pango_layout.text = value  # WeasyPrint lays the text out again from it when drawing
            moved[id(_unwrapped(box))] = box
        if moved:
            page.links = [(kind, target, _area(moved[id(_unwrapped(b))]) if id(_unwrapped(b)) in moved else rect, b)
                          for kind, target, rect, b in page.links]
    return missing


def _unwrapped(box):
    """The box itself, for an absolutely positioned box's placeholder (`layout.absolute.AbsolutePlaceholder`)."""
    return getattr(box, "_box", box)


def _area(box) -> tuple[float, float, float, float]:
    x, y, width, height = box.hit_area()
    return (x, y, x + width, y + height)
