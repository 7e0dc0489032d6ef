"""The per-sample explorer of a run report: which samples does each modality fail?

For every valued split (``valuation/<split>.parquet``) and, for runs that value during
training, every valued epoch (``valuation/epoch_XXX.parquet``, the training set; at most
`MAX_EPOCH_VIEWS`, evenly spaced, the last included), the explorer shows

- a gallery of the ``K`` samples each modality contributes least to and most to, drawn
  as the samples themselves (each modality through its kind's renderer,
  `mmcoop.report.render`; a playable clip where the source has the raw audio), with
  id, class, prediction and every modality's Shapley value;
- a sortable, filterable table of every sample (class, id, phi range of a modality,
  degraded modality, planned copies), and for runs valued over epochs a sample's phi and
  copies across the epochs (click a row).

All of it is one ``<script type="application/json">`` block (`json_for_html`: no
value can close or reopen the element) read by a small inline
script (no network, no library): the report stays one offline file. Media are stored once
per sample however many views show it; thumbnails are at most
`mmcoop.report.render.THUMB_MAX` pixels, so the size grows with ``K``, the number of
modalities and views, not with the dataset (the table itself holds at most
`MAX_TABLE_ROWS` rows per view).

The samples are read from the run's dataset, rebuilt from ``config.yaml`` by the
``samples`` loader given to `mmcoop.report.write_report` (the command line passes
one that also rebuilds a user's ``data.target``), else by `registered_splits`
(registered datasets only). Without data the explorer shows values only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mmcoop.report.format import json_for_html
from mmcoop.report.render import render, render_waveform

if TYPE_CHECKING:  # pragma: no cover
    from mmcoop.data.base import DatasetSplits

#: ``samples(run_dir) -> DatasetSplits | None``: the data of a run (eval transforms), for drawing samples.
SampleLoader = Callable[[Path], "DatasetSplits | None"]

DEFAULT_K = 8
MAX_EPOCH_VIEWS = 12
MAX_TABLE_ROWS = 5000


def registered_splits(run_dir: Path, config: Mapping[str, Any]) -> DatasetSplits | None:
    """The run's data rebuilt from its config when it is a registered dataset (debiased as configured).

    Returns ``None`` for a user ``data.target`` (give `write_report` a ``samples`` loader).
    """
    from mmcoop.data import debias, load_dataset

    if config.get("data") or not config.get("dataset"):
        return None
    seed = int(config.get("seed", 0))
    splits = load_dataset(
        str(config["dataset"]), config.get("data_root"), seed, **(config.get("dataset_options") or {})
    )
    deb = config.get("debiased")
    if isinstance(deb, Mapping):
        splits = debias(splits, strength=float(deb.get("strength", 0.8)), mode=str(deb.get("mode", "noise")), seed=seed)
    return splits


@dataclass
class View:
    """One valuation shown by the explorer: ``key`` (``test``, ``epoch_3``), its label, its rows and data split."""

    key: str
    label: str
    frame: pd.DataFrame
    split: str
    epoch: int | None = None


@dataclass
class Explorer:
    """What `build_explorer` made: the HTML fragment and what was drawn (for notes and tests)."""

    html: str
    views: list[str]
    media_samples: int = 0
    notes: list[str] = field(default_factory=list)


def _ids(df: pd.DataFrame) -> list[str]:
    if "sample_id" in df.columns:
        return [str(x) for x in df["sample_id"].tolist()]
    return [str(int(x)) for x in df["index"].tolist()]


def _num(values: np.ndarray, digits: int = 4) -> list[Any]:
    out = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(None if not np.isfinite(v) else (int(v) if float(v).is_integer() else round(v, digits)))
    return out


def _extreme(phi: np.ndarray, index: np.ndarray, k: int, highest: bool) -> list[int]:
    order = np.lexsort((index, -phi if highest else phi))
    return [int(i) for i in order[:k]]


def _view_data(view: View, modalities: Sequence[str], k: int) -> tuple[dict[str, Any], set[int]]:
    """Columnar JSON of one view and the positions of the rows its galleries show."""
    df = view.frame
    n = len(df)
    keep = np.arange(n)
    index = df["index"].to_numpy(dtype=np.int64)
    phi = {m: df[f"phi_{m}"].to_numpy(dtype=np.float64) for m in modalities}
    least = {m: _extreme(phi[m], index, k, False) for m in modalities}
    most = {m: _extreme(phi[m], index, k, True) for m in modalities}
    shown = {i for d in (least, most) for v in d.values() for i in v}
    truncated = 0
    if n > MAX_TABLE_ROWS:  # the rows with the lowest minimum phi, plus every gallery row
        low = np.argsort(np.min(np.stack(list(phi.values()), 1), 1), kind="stable")[:MAX_TABLE_ROWS]
        keep = np.unique(np.concatenate([low, np.array(sorted(shown), dtype=np.int64)]))
        truncated = n - len(keep)
    pos = {int(p): j for j, p in enumerate(keep)}
    ids = _ids(df)
    data: dict[str, Any] = {
        "key": view.key,
        "label": view.label,
        "split": view.split,
        "epoch": view.epoch,
        "n": n,
        "truncated": truncated,
        "id": [ids[i] for i in keep],
        "row": index[keep].tolist(),
        "y": df["label"].to_numpy()[keep].astype(int).tolist(),
        "pred": df["fused_pred"].to_numpy()[keep].astype(int).tolist() if "fused_pred" in df else None,
        "phi": {m: _num(phi[m][keep]) for m in modalities},
        "upred": {
            m: df[f"pred_{m}"].to_numpy()[keep].astype(int).tolist() for m in modalities if f"pred_{m}" in df.columns
        },
        "deg": None,
        "copies": None,
        "least": {m: [pos[i] for i in v] for m, v in least.items()},
        "most": {m: [pos[i] for i in v] for m, v in most.items()},
    }
    if "degraded_modality" in df.columns:
        data["deg"] = [None if pd.isna(x) else str(x) for x in df["degraded_modality"].to_numpy()[keep]]
    elif "degraded" in df.columns:
        deg = df["degraded"].to_numpy()[keep].astype(int)
        data["deg"] = [modalities[d] if 0 <= d < len(modalities) else None for d in deg]
    if all(f"copies_{m}" in df.columns for m in modalities):
        data["copies"] = {m: df[f"copies_{m}"].to_numpy()[keep].astype(int).tolist() for m in modalities}
    return data, shown


def _render_kinds(splits: DatasetSplits) -> dict[str, str]:
    """Modality -> kind to draw it as: the spec's kind, or the dataset's ``info["render"]`` override."""
    over = r if isinstance(r := splits.info.get("render"), Mapping) else {}
    return {s.name: str(over.get(s.name, s.kind)) for s in splits.specs}


def _media(
    splits: DatasetSplits, split: str, rows: Sequence[int], ids: Sequence[str], notes: list[str]
) -> dict[str, dict[str, Any]]:
    """``{sample_id: {"r": {modality: {"img"|"svg": ...}}, "a": {modality: wav uri}}}`` for storage ``rows``."""
    from mmcoop.data import sample_waveforms

    ds = splits.split(split)
    kinds = _render_kinds(splits)
    known = ds.sample_ids
    ok = [(r, i) for r, i in zip(rows, ids) if 0 <= r < len(known) and known[r] == i]
    if len(ok) < len(rows):
        notes.append(
            f"{len(rows) - len(ok)} sample(s) of the {split} split no longer match the data "
            "(different ids at their rows): shown as values only"
        )
    out: dict[str, dict[str, Any]] = {}
    if not ok:
        return out
    rows_t = ds.source.labels().new_tensor([r for r, _ in ok])  # int64 on the storage's device (no torch import here)
    got = ds.source.fetch(rows_t, False)["inputs"]
    missing = set()
    for j, (r, sid) in enumerate(ok):
        entry: dict[str, Any] = {"r": {}}
        for m, kind in kinds.items():
            x = got[m][j].detach().float().cpu().numpy()
            drawn = render(kind, x)
            if drawn is None:
                missing.add(kind)
            else:
                entry["r"][m] = drawn
        waves = sample_waveforms(ds.source, r)
        if waves:
            entry["a"] = {m: render_waveform(w, rate)["audio"] for m, (w, rate) in waves.items()}
        out[sid] = entry
    if missing:
        notes.append(
            f"no renderer for modality kind(s) {sorted(missing)}: values only "
            "(register one with mmcoop.report.render.RENDERERS)"
        )
    return out


def build_explorer(
    views: Sequence[View],
    modalities: Sequence[str],
    splits: DatasetSplits | None,
    *,
    k: int = DEFAULT_K,
    class_names: Sequence[str] | None = None,
    data_note: str | None = None,
) -> Explorer:
    """The explorer's HTML fragment (data + inline script) for ``views``.

    Args:
        views: valuations to show (split files and epochs).
        modalities: modality names in model order.
        splits: the run's data to draw samples from (``None``: values only).
        k: samples per gallery (least and most, per modality).
        class_names: names of the classes by index, if known.
        data_note: why ``splits`` is ``None`` (shown to the reader).

    Returns:
        `Explorer` (``html`` empty when there are no views).
    """
    if not views:
        return Explorer("", [])
    notes: list[str] = [] if data_note is None else [data_note]
    data_views: list[dict[str, Any]] = []
    need: dict[str, dict[str, int]] = {}
    for v in views:
        d, shown = _view_data(v, modalities, k)
        data_views.append(d)
        ids, index = _ids(v.frame), v.frame["index"].to_numpy(dtype=np.int64)
        bucket = need.setdefault(v.split, {})
        for i in shown:
            bucket[ids[i]] = int(index[i])
    media: dict[str, dict[str, Any]] = {}
    if splits is not None:
        for split, todo in need.items():
            media[split] = _media(splits, split, list(todo.values()), list(todo.keys()), notes)
    payload = {
        "modalities": list(modalities),
        "k": int(k),
        "views": data_views,
        "media": media,
        "classes": list(class_names) if class_names else None,
        "notes": notes,
    }
    blob = json_for_html(payload)
    html = (
        '<div id="mmx" class="mmx">'
        '<div class="mmx-bar"><label>valuation <select id="mmx-view"></select></label>'
        ' <span id="mmx-info" class="sub"></span></div>'
        '<div id="mmx-notes"></div>'
        '<h3>Samples each modality contributes least and most to</h3><div id="mmx-galleries"></div>'
        "<h3>Every sample</h3>"
        '<div class="mmx-filters">'
        '<label>id <input id="mmx-f-id" type="search" size="14" placeholder="contains"></label> '
        '<label>class <select id="mmx-f-class"><option value="">all</option></select></label> '
        '<label>phi of <select id="mmx-f-mod"></select></label> '
        '<label>from <input id="mmx-f-lo" type="number" step="0.1" size="5"></label> '
        '<label>to <input id="mmx-f-hi" type="number" step="0.1" size="5"></label> '
        '<label id="mmx-f-deg-l">degraded <select id="mmx-f-deg"><option value="">any</option></select></label> '
        '<label id="mmx-f-cp-l">copies planned ≥ <input id="mmx-f-cp" type="number" min="0" step="1" size="3">'
        '</label> <span id="mmx-count" class="sub"></span></div>'
        '<div class="tw"><table id="mmx-table"><thead></thead><tbody></tbody></table></div>'
        '<div id="mmx-history"></div>'
        f'<script type="application/json" id="mmx-data">{blob}</script>'
        f"<script>{_JS}</script></div>"
    )
    return Explorer(html, [v.key for v in views], sum(len(x) for x in media.values()), notes)


def epoch_views(epoch_files: Mapping[int, Path], read: Callable[[Path], pd.DataFrame | None]) -> list[View]:
    """Views of at most `MAX_EPOCH_VIEWS` valued epochs (evenly spaced, first and last included)."""
    epochs = sorted(epoch_files)
    if len(epochs) > MAX_EPOCH_VIEWS:
        idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, MAX_EPOCH_VIEWS)).astype(int))
        epochs = [epochs[i] for i in idx]
    out = []
    for e in epochs:
        df = read(epoch_files[e])
        if df is not None:
            out.append(View(f"epoch_{e}", f"epoch {e} (training set)", df, "train", e))
    return out


def report_size(path: str | os.PathLike) -> int:
    """Bytes of a written report (for the benchmark)."""
    return Path(path).stat().st_size


CSS = """
.mmx-bar { margin: 0.5em 0; } .mmx-gal { display: flex; flex-wrap: wrap; gap: 6px; margin: 0.3em 0 0.8em; }
.mmx-card { border: 1px solid #ccc; border-radius: 4px; padding: 4px; font-size: 0.78em; background: #fafafa;
            min-width: 110px; }
.mmx-card img { margin: 2px 2px 0 0; image-rendering: pixelated; vertical-align: top; max-width: none; }
.mmx-card img.mmx-focus { outline: 2px solid #d9822b; }
.mmx-card .mmx-m { display: inline-block; vertical-align: top; }
.mmx-card audio { width: 150px; height: 28px; display: block; margin-top: 2px; }
.mmx-card .mmx-id { font-family: monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
                    max-width: 220px; display: block; }
.mmx-filters { margin: 0.4em 0; line-height: 2; } .mmx-filters input { width: 6em; }
#mmx-table th { cursor: pointer; user-select: none; } #mmx-table tbody tr { cursor: pointer; }
#mmx-table tbody tr.mmx-sel { background: #fff3d6; } .mmx-lo { color: #b03a2e; font-weight: 600; }
"""

# Inline script (no library): builds the view menu, galleries, the table with sorting and filters,
# and the per-epoch history of a clicked sample, from the JSON block above.
_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("mmx-data").textContent);
  var M = D.modalities, V = D.views, K = D.k;
  var $ = function (id) { return document.getElementById(id); };
  var el = function (tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (a) { e.setAttribute(a, attrs[a]); }); }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  };
  var cls = function (y) { return D.classes && D.classes[y] !== undefined ? D.classes[y] + " (" + y + ")" : String(y); };
  var fmt = function (v) { return v === null || v === undefined ? "–" : (Math.round(v * 1000) / 1000).toString(); };
  var state = { view: 0, sort: null, desc: false, mod: M[0] };

  D.notes.forEach(function (n) { $("mmx-notes").appendChild(el("p", { "class": "note" }, n)); });
  V.forEach(function (v, i) { $("mmx-view").appendChild(el("option", { value: String(i) }, v.label)); });
  M.forEach(function (m) { $("mmx-f-mod").appendChild(el("option", { value: m }, m)); });

  function card(v, p, focus) {
    var c = el("div", { "class": "mmx-card" });
    var id = v.id[p];
    c.appendChild(el("span", { "class": "mmx-id", title: id }, id));
    var media = (D.media[v.split] || {})[id];
    if (media) {
      M.forEach(function (m) {
        var r = media.r[m];
        if (!r) { return; }
        var box = el("span", { "class": "mmx-m", title: m });
        if (r.img) {
          var im = el("img", { src: r.img, alt: m + " of " + id, "data-modality": m });
          if (m === focus) { im.setAttribute("class", "mmx-focus"); }
          box.appendChild(im);
        } else if (r.svg) {
          var holder = el("span", { "data-modality": m, "class": m === focus ? "mmx-focus" : "" });
          holder.innerHTML = r.svg;
          box.appendChild(holder);
        }
        c.appendChild(box);
      });
      if (media.a) {
        Object.keys(media.a).forEach(function (m) {
          var a = el("audio", { controls: "", preload: "none", src: media.a[m], title: m + " recording" });
          c.appendChild(a);
        });
      }
    }
    var txt = "class " + cls(v.y[p]) + (v.pred ? " · pred " + v.pred[p] : "");
    c.appendChild(el("div", null, txt));
    var phis = M.map(function (m) { return m + " " + fmt(v.phi[m][p]); }).join(" · ");
    c.appendChild(el("div", null, "phi: " + phis));
    if (v.deg && v.deg[p]) { c.appendChild(el("div", null, "degraded: " + v.deg[p])); }
    if (v.copies) { c.appendChild(el("div", null, "copies: " + M.map(function (m) { return v.copies[m][p]; }).join("/"))); }
    return c;
  }

  function galleries() {
    var v = V[state.view], g = $("mmx-galleries");
    g.textContent = "";
    M.forEach(function (m) {
      [["least", "contributes least to"], ["most", "contributes most to"]].forEach(function (s) {
        var ps = v[s[0]][m];
        g.appendChild(el("h4", null, m + " " + s[1] + " (" + ps.length + " of " + v.n + ", by phi_" + m + ")"));
        var box = el("div", { "class": "mmx-gal", "data-modality": m, "data-side": s[0] });
        ps.forEach(function (p) { box.appendChild(card(v, p, m)); });
        g.appendChild(box);
      });
    });
  }

  function columns(v) {
    var cols = [["id", "id"], ["y", "class"]];
    if (v.pred) { cols.push(["pred", "pred"]); }
    M.forEach(function (m) { cols.push(["phi:" + m, "phi " + m]); });
    M.forEach(function (m) { if (v.upred[m]) { cols.push(["upred:" + m, "pred " + m + " alone"]); } });
    if (v.deg) { cols.push(["deg", "degraded"]); }
    if (v.copies) { M.forEach(function (m) { cols.push(["copies:" + m, "copies " + m]); }); }
    return cols;
  }
  function value(v, key, p) {
    var i = key.indexOf(":");
    if (i < 0) { return v[key][p]; }
    return v[key.slice(0, i)][key.slice(i + 1)][p];
  }

  function setupFilters() {
    var v = V[state.view];
    var cs = $("mmx-f-class"), keep = cs.value;
    cs.textContent = ""; cs.appendChild(el("option", { value: "" }, "all"));
    Array.from(new Set(v.y)).sort(function (a, b) { return a - b; }).forEach(function (y) {
      cs.appendChild(el("option", { value: String(y) }, cls(y)));
    });
    cs.value = keep && v.y.indexOf(Number(keep)) >= 0 ? keep : "";
    var ds = $("mmx-f-deg");
    ds.textContent = ""; ds.appendChild(el("option", { value: "" }, "any"));
    $("mmx-f-deg-l").style.display = v.deg ? "" : "none";
    if (v.deg) { M.forEach(function (m) { ds.appendChild(el("option", { value: m }, m)); }); }
    $("mmx-f-cp-l").style.display = v.copies ? "" : "none";
  }

  function rows() {
    var v = V[state.view], out = [];
    var fid = $("mmx-f-id").value.trim().toLowerCase(), fc = $("mmx-f-class").value;
    var fm = $("mmx-f-mod").value || M[0], lo = $("mmx-f-lo").value, hi = $("mmx-f-hi").value;
    var fd = $("mmx-f-deg").value, fcp = $("mmx-f-cp").value;
    for (var p = 0; p < v.id.length; p++) {
      if (fid && v.id[p].toLowerCase().indexOf(fid) < 0) { continue; }
      if (fc !== "" && String(v.y[p]) !== fc) { continue; }
      var ph = v.phi[fm][p];
      if (lo !== "" && !(ph >= Number(lo))) { continue; }
      if (hi !== "" && !(ph <= Number(hi))) { continue; }
      if (fd !== "" && v.deg && v.deg[p] !== fd) { continue; }
      if (fcp !== "" && v.copies) {
        var tot = 0; M.forEach(function (m) { tot += v.copies[m][p]; });
        if (tot < Number(fcp)) { continue; }
      }
      out.push(p);
    }
    if (state.sort) {
      var key = state.sort, sign = state.desc ? -1 : 1;
      out.sort(function (a, b) {
        var x = value(v, key, a), y = value(v, key, b);
        if (x === y) { return a - b; }
        if (x === null || x === undefined) { return 1; }
        if (y === null || y === undefined) { return -1; }
        return (x < y ? -1 : 1) * sign;
      });
    }
    return out;
  }

  var LIMIT = 300;
  function table() {
    var v = V[state.view], cols = columns(v);
    var head = $("mmx-table").tHead, body = $("mmx-table").tBodies[0];
    head.textContent = ""; body.textContent = "";
    var tr = el("tr");
    cols.forEach(function (c) {
      var mark = state.sort === c[0] ? (state.desc ? " ▼" : " ▲") : "";
      var th = el("th", { "data-key": c[0], "class": c[0] === "id" ? "l" : "" }, c[1] + mark);
      th.addEventListener("click", function () {
        if (state.sort === c[0]) { state.desc = !state.desc; } else { state.sort = c[0]; state.desc = false; }
        table();
      });
      tr.appendChild(th);
    });
    head.appendChild(tr);
    var ps = rows();
    ps.slice(0, LIMIT).forEach(function (p) {
      var r = el("tr", { "data-id": v.id[p] });
      cols.forEach(function (c) {
        var x = value(v, c[0], p);
        var td = el("td", { "class": c[0] === "id" ? "l" : "" },
                    c[0] === "y" ? cls(x) : (typeof x === "number" ? fmt(x) : (x === null ? "–" : x)));
        if (c[0].indexOf("phi:") === 0 && x !== null && x <= 0.4) { td.className = "mmx-lo"; }
        r.appendChild(td);
      });
      r.addEventListener("click", function () { history(v.id[p], v.split, r); });
      body.appendChild(r);
    });
    $("mmx-count").textContent = ps.length + " of " + v.id.length + " samples match" +
      (ps.length > LIMIT ? " (first " + LIMIT + " shown)" : "") +
      (v.truncated ? "; " + v.truncated + " samples with higher phi left out of this table" : "");
  }

  function history(id, split, row) {
    var sel = document.querySelector("#mmx-table tr.mmx-sel");
    if (sel) { sel.className = ""; }
    row.className = "mmx-sel";
    var box = $("mmx-history");
    box.textContent = "";
    var seen = V.filter(function (v) { return v.split === split && v.id.indexOf(id) >= 0; });
    box.appendChild(el("h4", null, "sample " + id + " in every valuation of the " + split + " split"));
    var t = el("table"), h = el("tr");
    var hasCopies = seen.some(function (v) { return v.copies; });
    ["valuation"].concat(M.map(function (m) { return "phi " + m; }),
      hasCopies ? M.map(function (m) { return "copies " + m; }) : []).forEach(function (c) { h.appendChild(el("th", null, c)); });
    t.appendChild(h);
    seen.forEach(function (v) {
      var p = v.id.indexOf(id), r = el("tr");
      r.appendChild(el("td", { "class": "l" }, v.label));
      M.forEach(function (m) { r.appendChild(el("td", null, fmt(v.phi[m][p]))); });
      if (hasCopies) { M.forEach(function (m) { r.appendChild(el("td", null, v.copies ? v.copies[m][p] : "–")); }); }
      t.appendChild(r);
    });
    var w = el("div", { "class": "tw" }); w.appendChild(t); box.appendChild(w);
  }

  function show() {
    var v = V[state.view];
    $("mmx-info").textContent = v.n + " samples · " + K + " per gallery";
    setupFilters(); galleries(); table(); $("mmx-history").textContent = "";
  }
  $("mmx-view").addEventListener("change", function (e) { state.view = Number(e.target.value); show(); });
  ["mmx-f-id", "mmx-f-lo", "mmx-f-hi", "mmx-f-cp"].forEach(function (id) { $(id).addEventListener("input", table); });
  ["mmx-f-class", "mmx-f-mod", "mmx-f-deg"].forEach(function (id) { $(id).addEventListener("change", table); });
  show();
})();
"""

__all__ = [
    "CSS",
    "DEFAULT_K",
    "MAX_EPOCH_VIEWS",
    "MAX_TABLE_ROWS",
    "Explorer",
    "SampleLoader",
    "View",
    "build_explorer",
    "epoch_views",
    "registered_splits",
]
