"""Formatting helpers of the HTML report: escaping, numbers, percent columns and tables."""

from __future__ import annotations

import html
import json
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


#: characters that may end or open something in an HTML ``<script>`` (``</script>``, ``<!--``, ``<script``):
#: written as JSON escapes, which decode to the same string
_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_for_html(obj: Any) -> str:
    """``obj`` as compact JSON safe to embed in an HTML ``<script>`` element (every JSON in the report).

    ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e``, ``\\u0026`` so that no value (a
    sample id ``<!--<script>`` or ``</script>``) can close the element or switch the HTML parser into
    a script-data state that swallows the page's next script. ``JSON.parse`` reads the same values.

    Args:
        obj: JSON-serialisable data (no NaN/Inf).

    Returns:
        The JSON text, without a raw ``<``, ``>`` or ``&``.
    """
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).translate(_HTML_UNSAFE)


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v: Any, pct: bool = False, digits: int = 4) -> str:
    if is_missing(v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if pct:
            return f"{100 * v:.2f}%"
        if math.isfinite(v) and v == round(v) and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.{digits}g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


def is_pct_key(key: str) -> bool:
    k = key.lower()
    return ("acc" in k or "f1" in k or "share" in k or "lowest_is" in k or k == "chance") and "auc" not in k


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    pct: Iterable[str] | None = None,
    raw: Iterable[str] = (),
    left: Iterable[str] = (),
    wrap: Iterable[str] = (),
) -> str:
    """An HTML table of ``rows`` (dicts); ``pct`` columns in percent (default: by name), ``raw`` = trusted HTML.

    The table sits in a box that scrolls sideways when it is wider than the page; cells
    never break (numbers stay on one line) except the ``wrap`` columns (long text).
    """
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    pct_set = set(pct) if pct is not None else {c for c in cols if is_pct_key(c)}
    raw_set, left_set, wrap_set = set(raw), set(left), set(wrap)
    out = ['<div class="tw"><table><thead><tr>']
    out += [f'<th class="{"l" if c in left_set else ""}">{esc(c)}</th>' for c in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            v = r.get(c)
            cell = v if c in raw_set and isinstance(v, str) else esc(fmt(v, pct=c in pct_set))
            names = " ".join(n for n, on in (("l", c in left_set), ("wrap", c in wrap_set)) if on)
            cls = f' class="{names}"' if names else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def note_html(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def pm(mean: Any, std: Any, pct: bool) -> str:
    if is_missing(mean):
        return "–"
    s = 100.0 if pct else 1.0
    std = 0.0 if is_missing(std) else float(std)
    return f"{float(mean) * s:.2f} ± {std * s:.2f}"


def interval(low: Any, high: Any, n: Any) -> str:
    if is_missing(low) or is_missing(high):
        return "undefined (1 seed)" if not is_missing(n) and float(n) <= 1 else "–"
    return f"[{float(low):+.2f}, {float(high):+.2f}]"


def kv(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{a}={json.dumps(b) if isinstance(b, (dict, list)) else b}" for a, b in d.items())
