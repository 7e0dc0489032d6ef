"""The report page: its CSS, sections, embedded plots, and the files it writes.

Also the small helpers every section shares: lazily read valuation files, the epochs a
figure shows, and the closing "Not in this report" list.
"""

from __future__ import annotations

import base64
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mmcoop.report.explorer import CSS as EXPLORER_CSS
from mmcoop.report.format import esc, note_html
from mmcoop.report.loaders import read_valuation
from mmcoop.utils.io import atomic_write_files
from mmcoop.utils.rundir import PLOTS_DIR, REPORT_FILE
from mmcoop.utils.runfiles import is_mmcoop_plot

CSS = (
    """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
.tw { max-width: 100%; overflow-x: auto; }  /* a wide table scrolls inside its box, never past the page */
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 16em; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; margin: 0.4em 0; }
.note { color: #666; font-style: italic; } .sub { color: #666; font-size: 0.9em; }
nav a { margin-right: 1em; } code { background: #f5f5f5; padding: 0 3px; }
details { margin: 0.6em 0; } figure { margin: 0.6em 0; }
ul.missing { color: #666; font-size: 0.9em; }
"""
    + EXPLORER_CSS
)


class Page:
    """Collects sections and plots; renders the HTML and writes the plot files."""

    def __init__(self, root: Path, title: str) -> None:
        self.root = root
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.plots: dict[str, bytes] = {}

    def h2(self, anchor: str, title: str) -> None:
        self.toc.append((anchor, title))
        self.parts.append(f'<h2 id="{esc(anchor)}">{esc(title)}</h2>')

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def note(self, text: str) -> None:
        self.parts.append(note_html(text))

    def image(self, name: str, png: bytes | None, alt: str, missing: str | None = None) -> bool:
        if png is None:
            if missing:
                self.note(missing)
            return False
        fname = f"{name}.png"
        self.plots[fname] = png
        b64 = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(alt)}" title="{esc(alt)}">'
            f'<figcaption class="sub">{esc(alt)} — also saved as <code>{PLOTS_DIR}/{esc(fname)}</code></figcaption>'
            "</figure>"
        )
        return True

    def render(self, subtitle: str = "") -> str:
        nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in self.toc)
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{esc(self.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<h1>{esc(self.title)}</h1>\n<p class="sub">{subtitle} Report written {esc(when)} by mmcoop.</p>\n'
            f"<nav>{nav}</nav>\n" + "\n".join(self.parts) + "\n</body>\n</html>\n"
        )

    def write(self, subtitle: str = "") -> Path:
        """Write ``report.html`` and its plots all or nothing (`mmcoop.utils.io.atomic_write_files`):
        a failure (a full disk) leaves no new file and the previous report as it was; the previous
        report's plots that this one no longer draws are removed only once it is written."""
        pdir = self.root / PLOTS_DIR
        kept = []  # a user's file where a plot would go: kept, the plot is only in the HTML
        files: dict[Path, bytes] = {}
        for fname, png in self.plots.items():
            target = pdir / fname
            if (target.exists() or target.is_symlink()) and not is_mmcoop_plot(target):
                kept.append(fname)
            else:
                files[target] = png
        if kept:
            warnings.warn(
                f"{pdir}: kept {', '.join(sorted(kept))} (not written by mmcoop); those plots are in "
                f"{REPORT_FILE} only",
                stacklevel=3,
            )
            self.note(
                f"Not saved to {PLOTS_DIR}/ (a file of that name there was not written by mmcoop and is kept; "
                f"the plot is in this page only): {', '.join(sorted(kept))}. Move those files to save the plots."
            )
        report = self.root / REPORT_FILE
        files[report] = self.render(subtitle).encode("utf-8")
        atomic_write_files(files)
        if pdir.is_dir():  # drop the report's own plots that this one no longer draws (only its own)
            for old in pdir.glob("*.png"):
                if old.name not in self.plots and is_mmcoop_plot(old):
                    try:
                        old.unlink()
                    except OSError:
                        pass
        return report


def choose_epochs(epochs: Sequence[int], k: int = 3) -> list[int]:
    """First, middle and last (``k`` spread evenly) of the sorted ``epochs``."""
    if not epochs:
        return []
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, min(k, len(epochs)))).astype(int))
    return [epochs[i] for i in idx]


class Valuations:
    """Reads valuation parquets lazily, once each; remembers unreadable files."""

    def __init__(self) -> None:
        self.cache: dict[Path, pd.DataFrame | None] = {}
        self.errors: list[str] = []

    def get(self, path: Path) -> pd.DataFrame | None:
        if path not in self.cache:
            try:
                df = read_valuation(path)
                if not any(c.startswith("phi_") for c in df.columns):
                    raise ValueError("no phi_<modality> columns")
                self.cache[path] = df
            except Exception as e:  # noqa: BLE001 - a broken file must not stop the report
                self.cache[path] = None
                self.errors.append(f"{path.name}: {type(e).__name__}: {e}")
        return self.cache[path]


def mods_of(dfs: Mapping[str, pd.DataFrame], fallback: Sequence[str]) -> list[str]:
    for df in dfs.values():
        m = df.attrs.get("modalities")
        if m:
            return list(m)
    return list(fallback)


def missing_list(page: Page, missing: Sequence[str]) -> None:
    if missing:
        page.add(
            '<p class="sub">Not in this report:</p><ul class="missing">'
            + "".join(f"<li>{esc(m)}</li>" for m in missing)
            + "</ul>"
        )
