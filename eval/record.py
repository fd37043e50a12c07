"""The experiment record: one manifest of runs (eval/manifest.yaml), one table of measured rows (eval/results.csv),
and the README's tables and figures generated from those rows.

    .venv/bin/python eval/record.py run [--only ID ...]   # run every manifest entry that has no row yet
    .venv/bin/python eval/record.py readme                # rewrite the README's generated tables, redraw the figures
    .venv/bin/python eval/record.py readme --check        # exit 1 if the README's tables differ from the rows

A row is one measurement with the command that made it. ``kind=train``: a full training run scored on the 10,000
Fashion-MNIST test images (single view, as timm's validate.py; ``top1_flip`` with flip TTA), its training-loop
minutes (summed per-epoch wall time, eval excluded) and, per target accuracy, the minutes at the first epoch that
reached it. ``kind=trial``: one trial of a ``fixnorm-zoo tune`` search, scored on held-out training images
(``split``). Runs are resumable: a killed training continues from its last checkpoint, a killed search from its
trial log; a finished row is never re-run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, from a checkout

from fixnorm_zoo.utils.atomic import atomic_write_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the record's modules beside this script

from record_figures import draw_figures  # noqa: E402
from record_rows import PAGES, ROOT, read_rows  # noqa: E402
from record_runner import run  # noqa: E402
from record_tables import render_readme  # noqa: E402

__all__ = ["draw_figures", "read_rows", "render_readme", "run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the manifest entries that have no row yet")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these manifest ids")
    p = sub.add_parser("readme", help="regenerate the README's tables and the figures from the rows")
    p.add_argument("--check", action="store_true", help="only check that the README's tables match the rows")
    args = ap.parse_args()
    if args.command == "run":
        run(args.only)
        return 0
    rows = read_rows()
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render_readme(text, rows)
        if new != text:
            stale.append(page)
            if not args.check:
                atomic_write_text(page, new)
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(
                f"{names}: generated tables differ from eval/results.csv: run eval/record.py readme",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in draw_figures(rows):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
