"""Command line: `pdfgen render OUVRAGE_DIR -o OUT_DIR [--commun DIR]`, `pdfgen tableau TABLE.xml -o OUT.pdf`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError
from pdfgen_pipeline.ouvrage.loader import OuvrageError
from pdfgen_pipeline.render.images import ImageError
from pdfgen_pipeline.render.limits import RenderLimitError
from pdfgen_pipeline.xmlsafe import XmlInputError

#: Input errors: one line on stderr, exit code 2.
INPUT_ERRORS = (XmlInputError, OuvrageError, InvalidKeyError, ImageError)
#: A render stopped by its time, CPU or memory limit: one line naming the limit, exit code 3.
LIMIT_EXIT = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdfgen", description="Shom nautical publications: XML → PDF.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render one ouvrage folder (referentiel layout) into OUT_DIR")
    r.add_argument("ouvrage_dir", type=Path)
    r.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: var/render/<key>)")
    r.add_argument("--commun", type=Path, default=None,
                   help="shared illustrations folder (default: ../commun beside the ouvrage, if present)")
    r.add_argument("--key", default=None, help="ouvrage key (default: the folder name)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    t = sub.add_parser("tableau", help="turn one table file (flat spreadsheet XML) into its own PDF")
    t.add_argument("table", type=Path)
    t.add_argument("-o", "--out", type=Path, required=True)
    t.add_argument("--title", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pdfgen` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "render":
            from pdfgen_pipeline.render.book import render_ouvrage

            out = args.out or Path("var/render") / args.ouvrage_dir.resolve().name
            report = render_ouvrage(args.ouvrage_dir, out, commun_dir=args.commun, key=args.key,
                                    echo=None if args.quiet else sys.stderr)
            for doc in report["documents"]:
                print(f"{out / doc['pdf']}\t{doc['pages']} pages")
            return 0
        from pdfgen_pipeline.render.tables import render_table_pdf

        pages = render_table_pdf(args.table, args.out, title=args.title)
        print(f"{args.out}\t{pages} pages")
        return 0
    except INPUT_ERRORS as exc:
        print(f"pdfgen: error: {exc}", file=sys.stderr)
        return 2
    except RenderLimitError as exc:
        print(f"pdfgen: error: {exc}", file=sys.stderr)
        return LIMIT_EXIT
    except OSError as exc:  # an output folder that cannot be written, a full disk…
        print(f"pdfgen: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
