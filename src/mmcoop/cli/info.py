"""What the registries hold, for ``mmcoop methods`` / ``mmcoop datasets`` and the CLI help texts.

Everything here is read from the registries and the docstrings (no hand-kept lists): a
method's options from its ``Options`` dataclass (types, defaults, the ``Attributes:``
section of its docstring), the paper, official code and deliberate differences from its
module docstring (the ``Paper:`` paragraph and the ``Deliberate differences:`` section); a
dataset's options from its loader's signature and its layout from the reader's ``LAYOUT``
(or the loader module's docstring).

Example:
    >>> from mmcoop.cli.info import method_info
    >>> info = method_info("sample-level")
    >>> names = [o.name for o in info.options]
    >>> names[0], names[1]
    ('warmup', 'execution')
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from typer.core import TyperCommand

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(text: str) -> str:
    """Docstring text for a terminal: Sphinx roles and double backticks removed."""
    return _ROLE.sub(r"\1", text).replace("``", "")


def first_line(doc: str | None) -> str:
    """The first line of a docstring (``""`` without one)."""
    return plain(inspect.cleandoc(doc).splitlines()[0]) if doc and doc.strip() else ""


def docstring_attributes(cls: type) -> dict[str, str]:
    """``name -> description`` from the ``Attributes:`` sections of ``cls`` and its bases (subclass wins)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.getdoc(klass) if "__doc__" in vars(klass) else None
        if not doc or "Attributes:" not in doc:
            continue
        section = doc.split("Attributes:", 1)[1].splitlines()
        name, indent = None, None
        for line in section:
            if not line.strip():
                continue
            width = len(line) - len(line.lstrip())
            indent = width if indent is None else indent
            if width < indent:  # the section ended
                break
            m = re.match(r"\s*([A-Za-z_]\w*)(?:\s*\([^)]*\))?:\s*(.*)", line)
            if width == indent and m:
                name = m.group(1)
                out[name] = m.group(2).strip()
            elif name is not None:
                out[name] += " " + line.strip()
    return {k: plain(v) for k, v in out.items()}


def module_sections(doc: str) -> tuple[str, str]:
    """``(paper and code paragraph, deliberate differences)`` of a method module's docstring."""
    paras = re.split(r"\n\s*\n", doc)
    paper = next((p for p in paras if p.lstrip().startswith("Paper:")), "")
    m = re.search(r"(?i)deliberate differences[^:\n]*:", doc)
    diffs = doc[m.end() :].strip() if m else ""
    return plain(" ".join(paper.split())), plain(diffs)


@dataclass
class OptionInfo:
    """One option of a method: ``method_options.<name>``."""

    name: str
    type: str
    default: Any
    help: str


@dataclass
class MethodInfo:
    """A registered method as ``mmcoop methods NAME`` shows it."""

    name: str
    summary: str
    paper: str
    differences: str
    options: list[OptionInfo] = field(default_factory=list)
    variant_option: str | None = None
    max_modalities: int | None = None


def method_info(name: str) -> MethodInfo:
    """Describe registered method ``name`` from its class, options dataclass and docstrings."""
    from mmcoop.methods import METHODS

    cls = METHODS.get(name)
    helps = docstring_attributes(cls.Options)
    options = []
    for f in dataclasses.fields(cls.Options):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        options.append(OptionInfo(f.name, str(f.type).replace("typing.", ""), default, helps.get(f.name, "")))
    module = sys.modules.get(cls.__module__)
    paper, diffs = module_sections(inspect.getdoc(module) or "") if module is not None else ("", "")
    options.sort(key=lambda o: o.name == "allow_noop")  # the option every method shares goes last
    return MethodInfo(name, first_line(cls.__doc__), paper, diffs, options, cls.variant_option, cls.max_modalities)


def dataset_layout(name: str) -> str:
    """The files dataset ``name`` expects: its reader's ``LAYOUT``, else its module's docstring."""
    from mmcoop.data import DATASETS

    loader = DATASETS.get(name)
    target = getattr(loader, "reader", loader)
    module = sys.modules.get(getattr(target, "__module__", ""), None)
    layout = getattr(module, "LAYOUT", None)
    if layout:
        return str(layout).strip("\n")
    return plain(inspect.getdoc(module) or inspect.getdoc(loader) or "")


def dataset_summary(name: str) -> str:
    """One line about dataset ``name`` (its loader's docstring)."""
    from mmcoop.data import DATASETS

    loader = DATASETS.get(name)
    module_doc = getattr(sys.modules.get(loader.__module__), "__doc__", "")
    line = (
        first_line(loader.__doc__)
        if hasattr(loader, "reader")
        else first_line(module_doc) or first_line(loader.__doc__)
    )
    return line[len(name) + 2 :] if line.startswith(f"{name}: ") else line


def registry_lists() -> dict[str, str]:
    """The lists the CLI help texts show, read from the registries when help is rendered."""
    from mmcoop.data import DATASETS
    from mmcoop.experiment.presets import PRESETS
    from mmcoop.media.prepare import PREPARE_SPECS
    from mmcoop.methods import METHODS
    from mmcoop.methods.resampling import EXECUTIONS
    from mmcoop.valuation.values import VALUE_FUNCTIONS

    return {
        "METHODS": ", ".join(METHODS.names()),
        "DATASETS": ", ".join(DATASETS.names()),
        "PRESETS": ", ".join(PRESETS.names()),
        "VALUES": ", ".join(VALUE_FUNCTIONS.names()),
        "EXECUTIONS": ", ".join(EXECUTIONS),
        "PREPARE": ", ".join(PREPARE_SPECS.names()),
    }


class RegistryHelp(TyperCommand):
    """A command whose help texts name registry lists as ``{METHODS}``, ``{DATASETS}``, ``{PRESETS}``,
    ``{VALUES}``, ``{EXECUTIONS}``, ``{PREPARE}`` (`registry_lists`): filled in when the help is
    rendered, so the CLI starts without importing torch and plugins appear in the help."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        lists = registry_lists()
        for param in self.params:
            text = getattr(param, "help", None)
            if text and "{" in text:
                param.help = text.format_map(lists)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)
