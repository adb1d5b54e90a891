"""Screenshots of each report's first screen, for docs/reports.md.

    .venv/bin/python docs/screenshots.py            # the newest succeeded run of each report in reports/
    .venv/bin/python docs/screenshots.py --runs reports/data_overview/<run-id> ...

Opens each run's report.html in Debian's chromium (driven by Playwright, as
the browser tests do) at 1280 x 900 pixels, the first screen a reader sees,
and writes docs/screenshots/<notebook>.png. Run ``make run`` first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def newest_runs(reports: Path) -> dict[str, Path]:
    """The newest succeeded run folder of each notebook, by its manifest's start time."""
    best: dict[str, tuple[str, Path]] = {}
    for manifest in reports.glob("*/*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(m, dict) or m.get("status") != "succeeded":
            continue
        key, started = m.get("notebook", manifest.parent.parent.name), str(m.get("started_at", ""))
        if key not in best or started > best[key][0]:
            best[key] = (started, manifest.parent)
    return {k: v[1] for k, v in sorted(best.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", type=Path, help="run folders (default: the newest of each report in reports/)")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    runs = {p.parent.name: p for p in args.runs} if args.runs else newest_runs(args.reports)
    if not runs:
        print(f"no succeeded runs under {args.reports}: run `make run` first", file=sys.stderr)
        return 2
    executable = shutil.which("chromium")
    if executable is None:
        print("chromium is not installed: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for notebook, folder in runs.items():
            page.goto((folder / "report.html").resolve().as_uri(), wait_until="load")
            target = OUT / f"{notebook}.png"
            page.screenshot(path=str(target))
            print(f"{notebook}: {target.relative_to(ROOT)} (from {folder.name})")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
