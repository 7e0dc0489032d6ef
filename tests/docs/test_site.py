"""The documentation site's configuration: an API page per subpackage, a nav that points at real pages."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import mmcoop

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _nav_files() -> list[tuple[str, bool]]:
    """``(path, written elsewhere)`` for every page of the nav; "(parallel)" marks guides of other branches."""
    text = (ROOT / "mkdocs.yml").read_text()
    return [(m.group(1), "(parallel)" in m.group(0)) for m in re.finditer(r":\s*(\S+\.md)[^\n]*", text)]


def test_every_subpackage_has_an_api_page_in_the_nav() -> None:
    pkg = Path(mmcoop.__file__).parent
    subpackages = sorted(p.name for p in pkg.iterdir() if p.is_dir() and any(p.glob("*.py")))
    modules = sorted(p.stem for p in pkg.glob("*.py") if not p.stem.startswith("_"))
    nav = {path for path, _ in _nav_files()}
    for name in subpackages + modules:
        page = DOCS / "api" / f"{name}.md"
        assert page.is_file() and f"::: mmcoop.{name}" in page.read_text(), name
        assert f"api/{name}.md" in nav, name


def test_nav_pages_exist_except_guides_of_other_branches() -> None:
    for path, elsewhere in _nav_files():
        assert elsewhere or (DOCS / path).is_file(), path


def test_mkdocs_config_is_strict_ready() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs" and config["theme"]["name"] == "material"
    assert any("mkdocstrings" in (p if isinstance(p, str) else next(iter(p))) for p in config["plugins"])
    assert "mkdocs build --strict" in (ROOT / "Makefile").read_text()  # warnings are errors in `make test`
