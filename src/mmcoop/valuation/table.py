"""``ValuationTable``: per-sample valuations of one split, with summaries and parquet I/O.

One row per sample: its stable ``sample_id`` (clip id, file path, the user's id, else
the row index; see `mmcoop.data.sample_ids`), storage row ``index``, ``label``,
the prediction under every coalition (the fused prediction is the full coalition),
the Shapley value of every modality, the coalition values and any batch extras (e.g.
which modality was degraded). Unimodal accuracy comes for free from the singleton
coalitions. `ValuationTable.sample` looks a sample up by id,
`ValuationTable.lowest` lists the samples a modality contributes least to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.utils.io import atomic_write_bytes
from mmcoop.utils.rundir import (
    IDENTITY_COLUMNS,
    VALUATION_FORMAT,
    VALUATION_META_KEY,
    decode_valuation_meta,
    encode_valuation_meta,
    valuation_columns,
)
from mmcoop.valuation.coalitions import coalition_masks, coalition_names, find_coalition


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


@dataclass
class ValuationTable:
    """Valuations of ``N`` samples over ``M`` modalities and ``K`` coalitions (CPU tensors).

    Attributes:
        modalities: the ``M`` modality names, in model order.
        index: int64 ``[N]`` storage row of each sample (the sample index in its split).
        label: int64 ``[N]`` true class.
        phi: ``[N, M]`` Shapley value of each modality.
        values: ``[N, K]`` value of each coalition.
        coalition_preds: int64 ``[N, K]`` predicted class under each coalition.
        masks: bool ``[K, M]`` coalitions of the columns; ``None`` = all ``2**M`` in
            bitmask order (row ``c`` contains modality ``k`` iff ``(c >> k) & 1``).
        extras: name -> ``[N]`` per-sample extras from the batches (e.g. ``degraded``).
        stderr: ``[N, M]`` standard error of ``phi`` (permutation estimator) or ``None``.
        value: value function name.
        empty: ``v(empty)`` convention (``zero`` / ``model``).
        removal: feature removal (``zero`` / ``mean``).
        split: split name, if known.
        method: ``exact`` or ``permutation``.
        info: free JSON-serialisable metadata (e.g. ``{"epoch": 3}``).
        ids: stable id of each sample ``[N]`` (strings); ``None``: the storage row as a string.

    Example:
        >>> table = valuate_dataset(model, splits.test, split="test")  # doctest: +SKIP
        >>> table.lowest("audio", 5).to_pandas()[["sample_id", "label", "phi_audio"]]  # doctest: +SKIP
        >>> table.sample("3_jackson_12/mnist_4521")["phi"]  # doctest: +SKIP
        {'audio': 0.5, 'visual': 1.5}
    """

    modalities: list[str]
    index: Tensor
    label: Tensor
    phi: Tensor
    values: Tensor
    coalition_preds: Tensor
    masks: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    stderr: Tensor | None = None
    value: str = "paper"
    empty: str = "zero"
    removal: str = "zero"
    split: str | None = None
    method: str = "exact"
    info: dict[str, Any] = field(default_factory=dict)
    ids: list[str] | None = None

    def __post_init__(self) -> None:
        self.modalities = list(self.modalities)
        if self.ids is not None:
            self.ids = [str(x) for x in self.ids]
            if len(self.ids) != int(self.index.shape[0]):
                raise ValueError(
                    f"ValuationTable.ids must have {int(self.index.shape[0])} entries, got {len(self.ids)}"
                )
        m = len(self.modalities)
        if self.masks is None:
            self.masks = coalition_masks(m).clone()
        self.masks = self.masks.to(torch.bool, copy=True)  # never alias the cached coalition table
        n, k = int(self.index.shape[0]), int(self.masks.shape[0])
        if self.masks.shape[1] != m:
            raise ValueError(f"masks have {self.masks.shape[1]} columns but there are {m} modalities")
        expect = {
            "label": (self.label, (n,)),
            "phi": (self.phi, (n, m)),
            "values": (self.values, (n, k)),
            "coalition_preds": (self.coalition_preds, (n, k)),
        }
        if self.stderr is not None:
            expect["stderr"] = (self.stderr, (n, m))
        for name, t in self.extras.items():
            expect[f"extras[{name!r}]"] = (t, (n,))
        for name, (t, shape) in expect.items():
            if tuple(t.shape) != shape:
                raise ValueError(f"ValuationTable.{name} must have shape {list(shape)}, got {list(t.shape)}")

    @classmethod
    def from_result(
        cls, result: Any, modalities: Sequence[str], label: Tensor, index: Tensor | None = None, **meta: Any
    ) -> "ValuationTable":
        """A table from one batch's `ValuationResult` (``phi [B, M]``, ...):
        ``label`` int64 ``[B]``, ``index`` ``[B]`` (default ``arange(B)``), ``meta`` the other fields
        (``value``, ``empty``, ``split``, ...). Tensors are moved to the CPU."""
        n = int(result.phi.shape[0])
        index = torch.arange(n) if index is None else torch.as_tensor(index).long()
        stderr = None if result.stderr is None else result.stderr.cpu()
        return cls(
            list(modalities),
            index.cpu(),
            label.long().cpu(),
            result.phi.cpu(),
            result.values.cpu(),
            result.coalition_preds.cpu(),
            result.masks.cpu(),
            stderr=stderr,
            method=meta.pop("method", result.method),
            **meta,
        )

    # -- shape and names -------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return int(self.index.shape[0])

    def __len__(self) -> int:
        return self.num_samples

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def coalitions(self) -> list[str]:
        """Column names of the coalitions, e.g. ``["empty", "audio", "visual", "audio+visual"]``."""
        return coalition_names(self.modalities, self.masks)

    def coalition_column(self, members: Sequence[str | int]) -> int:
        """Column of the coalition made of ``members`` (names or indices)."""
        idx = [self.modalities.index(x) if isinstance(x, str) else int(x) for x in members]
        return find_coalition(self.masks, idx)  # type: ignore[arg-type]

    # -- sample identity ---------------------------------------------------------
    @property
    def sample_id(self) -> list[str]:
        """Stable id of every row ``[N]`` (the storage row as a string when no ids were recorded)."""
        return list(self.ids) if self.ids is not None else [str(i) for i in self.index.tolist()]

    @property
    def degraded_modality(self) -> list[str | None] | None:
        """Name of the degraded modality of every row (debiased data: the ``degraded`` extra), else ``None``."""
        deg = self.extras.get("degraded")
        if deg is None:
            return None
        return [self.modalities[k] if 0 <= k < self.num_modalities else None for k in deg.long().tolist()]

    def position(self, sample_id: str | int) -> int:
        """Row of the sample with id ``sample_id``.

        Raises:
            KeyError: no such id (the message names a few ids that exist).
        """
        ids = self.sample_id
        try:
            return ids.index(str(sample_id))
        except ValueError:
            some = ", ".join(repr(x) for x in ids[:3])
            raise KeyError(
                f"no sample with id {str(sample_id)!r} in this table ({self.num_samples} samples, e.g. {some})"
            ) from None

    def sample(self, sample_id: str | int) -> dict[str, Any]:
        """Everything recorded about one sample, by its id.

        Args:
            sample_id: the id (see `sample_id`); an int is matched as its string.

        Returns:
            ``{"sample_id", "index", "label", "split", "fused_pred", "phi": {modality: float},
                "pred": {modality: int} (each modality alone), "coalition_preds": {coalition: int},
                "degraded_modality" (or ``None``), **extras}``.

        Raises:
            KeyError: no sample has this id.
        """
        i = self.position(sample_id)
        deg = self.degraded_modality
        out: dict[str, Any] = {
            "sample_id": self.sample_id[i],
            "index": int(self.index[i]),
            "label": int(self.label[i]),
            "split": self.split,
            "fused_pred": int(self.fused_pred[i]),
            "phi": dict(zip(self.modalities, self.phi[i].double().tolist())),
            "pred": {m: int(self.unimodal_pred(m)[i]) for m in self.modalities},
            "coalition_preds": dict(zip(self.coalitions, self.coalition_preds[i].tolist())),
            "degraded_modality": None if deg is None else deg[i],
        }
        for k, v in self.extras.items():
            out.setdefault(k, v[i].item())
        return out

    def lowest(self, modality: str | int, k: int = 10, *, highest: bool = False) -> "ValuationTable":
        """The ``k`` samples modality ``modality`` contributes least (``highest=True``: most) to.

        Ordered by ``phi`` (ascending; descending for ``highest``), ties by storage row.

        Args:
            modality: name or index.
            k: how many (all when fewer samples).
            highest: the ``k`` largest instead.

        Returns:
            A `ValuationTable` of at most ``k`` rows.
        """
        j = self.modalities.index(modality) if isinstance(modality, str) else int(modality)
        if not 0 <= j < self.num_modalities:
            raise ValueError(f"modality index {j} out of range for {self.modalities}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        phi = self.phi[:, j].double()
        order = np.lexsort((_np(self.index), _np(-phi if highest else phi)))[: int(k)]
        return self.subset(torch.from_numpy(order.copy()))

    def lowest_frame(self, k: int = 10, modality: str | int | None = None) -> "Any":
        """The ``k`` samples each modality contributes least to, as one ``pandas.DataFrame``.

        Args:
            k: samples per modality.
            modality: only this modality (name or index); default: every modality.

        Returns:
            One row per (modality, sample): ``lowest_for`` (the modality), ``rank`` (1 =
                lowest phi), ``sample_id``, ``index``, ``label``, ``fused_pred``, then
                ``phi_<m>`` and ``pred_<m>`` (the prediction of ``m`` alone) for every modality,
                and ``degraded_modality`` when the data is debiased.
        """
        import pandas as pd

        mods = (
            self.modalities
            if modality is None
            else [self.modalities[self.modalities.index(modality) if isinstance(modality, str) else int(modality)]]
        )
        frames = []
        for m in mods:
            sub = self.lowest(m, k)
            row: dict[str, Any] = {
                "lowest_for": [m] * sub.num_samples,
                "rank": list(range(1, sub.num_samples + 1)),
                "sample_id": sub.sample_id,
                "index": _np(sub.index),
                "label": _np(sub.label),
                "fused_pred": _np(sub.fused_pred),
            }
            for j, mm in enumerate(self.modalities):
                row[f"phi_{mm}"] = _np(sub.phi[:, j].double())
            for mm in self.modalities:
                row[f"pred_{mm}"] = _np(sub.unimodal_pred(mm))
            deg = sub.degraded_modality
            if deg is not None:
                row["degraded_modality"] = deg
            frames.append(pd.DataFrame(row))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- predictions and accuracies -------------------------------------------
    @property
    def fused_pred(self) -> Tensor:
        """int64 ``[N]``: prediction with all modalities (the full coalition)."""
        return self.coalition_preds[:, self.coalition_column(range(self.num_modalities))]

    def unimodal_pred(self, modality: str | int) -> Tensor:
        """int64 ``[N]``: prediction from one modality alone (the others removed)."""
        return self.coalition_preds[:, self.coalition_column([modality])]

    def accuracy(self) -> float:
        """Accuracy of the fused prediction (NaN for an empty table)."""
        return float((self.fused_pred == self.label).double().mean()) if self.num_samples else float("nan")

    def unimodal_accuracy(self) -> dict[str, float]:
        """Accuracy of each modality alone, from the singleton coalitions' predictions."""
        if not self.num_samples:
            return {name: float("nan") for name in self.modalities}
        return {name: float((self.unimodal_pred(name) == self.label).double().mean()) for name in self.modalities}

    # -- contributions -----------------------------------------------------------
    def mean_contribution(self) -> dict[str, float]:
        """Mean Shapley value of each modality over the samples."""
        mean = self.phi.double().mean(0) if self.num_samples else torch.full((self.num_modalities,), float("nan"))
        return dict(zip(self.modalities, mean.tolist()))

    def per_class_contribution(self) -> "Any":
        """Mean Shapley value per class: ``pandas.DataFrame`` ``[classes x modalities]`` (index ``label``)."""
        import pandas as pd

        df = pd.DataFrame(_np(self.phi.double()), columns=self.modalities)
        df["label"] = _np(self.label)
        return df.groupby("label").mean().sort_index()

    def least_share(self, ties: Literal["split", "all"] = "split") -> dict[str, float]:
        """Share of samples in which each modality has the smallest Shapley value.

        Args:
            ties: ``"split"`` (default): a sample whose minimum is shared by ``t``
                modalities counts ``1/t`` for each, so the shares sum to 1 (a balanced
                sample with ``phi = (1, 1)`` counts half for each). ``"all"``: it counts
                fully for every tied modality (shares may sum to more than 1).

        Returns:
            modality -> share in ``[0, 1]`` (NaN for an empty table).
        """
        if ties not in ("split", "all"):
            raise ValueError(f"ties must be 'split' or 'all', got {ties!r}")
        if not self.num_samples:
            return {name: float("nan") for name in self.modalities}
        is_min = self.phi == self.phi.min(1, keepdim=True).values  # [N, M]
        w = is_min.double()
        if ties == "split":
            w = w / w.sum(1, keepdim=True)
        return dict(zip(self.modalities, w.mean(0).tolist()))

    def contribution_differences(self) -> Tensor:
        """``phi_0 - phi_1`` ``[N]`` for M=2; else ``phi_k - mean of the others`` ``[N, M]``."""
        phi = self.phi.double()
        m = self.num_modalities
        if m == 2:
            return phi[:, 0] - phi[:, 1]
        if m == 1:
            return phi.clone()
        return phi - (phi.sum(1, keepdim=True) - phi) / (m - 1)

    def difference_histogram(
        self, bins: int | Sequence[float] = 20, range: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of contribution differences (see `contribution_differences`).

        Args:
            bins: number of equal bins or the bin edges (as ``numpy.histogram``).
            range: ``(low, high)`` of the bins (default: data range).

        Returns:
            ``(counts, edges)``: counts ``[bins]`` for M=2 (``phi_0 - phi_1``), else
                ``[M, bins]`` (row k: ``phi_k`` minus the mean of the others); edges
                ``[bins + 1]`` shared by all rows.
        """
        d = _np(self.contribution_differences())
        edges = np.histogram_bin_edges(d.reshape(-1), bins=bins, range=range)
        if d.ndim == 1:
            return np.histogram(d, bins=edges)[0], edges
        return np.stack([np.histogram(d[:, k], bins=edges)[0] for k in np.arange(d.shape[1])]), edges

    def text_histogram(self, modality: str | int, bins: int = 10, width: int = 40) -> str:
        """A small ASCII histogram of one modality's Shapley values (for the CLI).

        Discrete values (at most ``bins`` distinct, as with the ``paper`` value
        function) get one line each; otherwise ``bins`` equal-width bins.

        Args:
            modality: name or index.
            bins: maximum number of lines.
            width: characters of the longest bar.

        Returns:
            Multi-line string: a header, then ``label | bar count`` lines.
        """
        k = self.modalities.index(modality) if isinstance(modality, str) else int(modality)
        x = _np(self.phi[:, k].double())
        name = self.modalities[k]
        if x.size == 0:
            return f"phi[{name}]: no samples"
        uniq, cnt = np.unique(x, return_counts=True)
        if uniq.size <= bins:
            labels = [f"{u:+.2f}" for u in uniq]
            counts = cnt
        else:
            counts, edges = np.histogram(x, bins=bins)
            closing = [")"] * (bins - 1) + ["]"]
            labels = [f"[{lo:+.3g}, {hi:+.3g}{c}" for lo, hi, c in zip(edges[:-1], edges[1:], closing)]
        lw = max(len(s) for s in labels)
        top = max(int(counts.max()), 1)
        lines = [f"phi[{name}]  n={x.size}  mean={x.mean():+.3f}"]
        for lab, c in zip(labels, counts):
            bar = "#" * int(round(width * int(c) / top))
            lines.append(f"{lab:>{lw}} | {bar} {int(c)}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: fused and unimodal accuracy, mean contribution, least share."""
        return {
            "samples": self.num_samples,
            "accuracy": self.accuracy(),
            "unimodal_accuracy": self.unimodal_accuracy(),
            "mean_contribution": self.mean_contribution(),
            "least_share": self.least_share(),
        }

    # -- selection -----------------------------------------------------------------
    def subset(self, select: Tensor) -> "ValuationTable":
        """Rows selected by a bool mask ``[N]`` or int64 positions."""
        sel = select.cpu()
        if sel.dtype == torch.bool:
            sel = sel.nonzero(as_tuple=True)[0]
        return replace(
            self,
            index=self.index[sel],
            label=self.label[sel],
            phi=self.phi[sel],
            values=self.values[sel],
            coalition_preds=self.coalition_preds[sel],
            masks=self.masks.clone(),
            extras={k: v[sel] for k, v in self.extras.items()},
            stderr=None if self.stderr is None else self.stderr[sel],
            info=dict(self.info),
            ids=None if self.ids is None else [self.ids[i] for i in sel.tolist()],
        )

    @classmethod
    def concat(cls, tables: Sequence["ValuationTable"]) -> "ValuationTable":
        """Concatenate tables of the same modalities, coalitions and settings (e.g. from several ranks)."""
        if not tables:
            raise ValueError("concat needs at least one table")
        first = tables[0]
        for t in tables[1:]:
            same = (
                t.modalities == first.modalities
                and torch.equal(t.masks, first.masks)
                and (t.value, t.empty, t.removal, t.method) == (first.value, first.empty, first.removal, first.method)
                and set(t.extras) == set(first.extras)
                and (t.stderr is None) == (first.stderr is None)
            )
            if not same:
                raise ValueError(
                    "cannot concatenate valuation tables with different modalities, coalitions or settings"
                )
        cat = lambda get: torch.cat([get(t) for t in tables])  # noqa: E731
        return replace(
            first,
            index=cat(lambda t: t.index),
            label=cat(lambda t: t.label),
            phi=cat(lambda t: t.phi),
            values=cat(lambda t: t.values),
            coalition_preds=cat(lambda t: t.coalition_preds),
            masks=first.masks.clone(),
            extras={k: cat(lambda t, k=k: t.extras[k]) for k in first.extras},
            stderr=None if first.stderr is None else cat(lambda t: t.stderr),
            info=dict(first.info),
            ids=[x for t in tables for x in t.sample_id] if any(t.ids is not None for t in tables) else None,
        )

    # -- pandas / parquet ----------------------------------------------------------------
    def _columns(self, values: bool, stderr: bool) -> dict[str, list[str]]:
        """Column groups (`mmcoop.utils.rundir.valuation_columns`); ValueError on a name clash."""
        return valuation_columns(
            self.modalities,
            self.coalitions,
            list(self.extras),
            values=values,
            stderr=stderr and self.stderr is not None,
        )

    def _arrays(self, values: bool = False, stderr: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        cols = self._columns(values, stderr)
        data: dict[str, np.ndarray] = {
            "index": _np(self.index),
            "label": _np(self.label),
            "fused_pred": _np(self.fused_pred),
        }
        taken = set(data) | {c for group in cols.values() for c in group}
        clash = sorted(taken & set(IDENTITY_COLUMNS))
        if clash:
            raise ValueError(
                f"column name clash in the valuation table: {clash} (used by mmcoop for the sample "
                "identity); rename the modality or extra"
            )
        preds, phi = _np(self.coalition_preds), _np(self.phi)
        for j, c in enumerate(cols["pred"]):
            data[c] = preds[:, j]
        for j, c in enumerate(cols["phi"]):
            data[c] = phi[:, j]
        if cols["values"]:
            vals = _np(self.values)
            for j, c in enumerate(cols["values"]):
                data[c] = vals[:, j]
        if cols["stderr"]:
            se = _np(self.stderr)  # type: ignore[arg-type]
            for j, c in enumerate(cols["stderr"]):
                data[c] = se[:, j]
        for k, v in self.extras.items():
            data[k] = _np(v)
        data["sample_id"] = np.array(self.sample_id, dtype=object)
        if self.split is not None:
            data["split"] = np.array([self.split] * self.num_samples, dtype=object)
        deg = self.degraded_modality
        if deg is not None:
            data["degraded_modality"] = np.array(deg, dtype=object)
        return data, cols

    def to_pandas(self, values: bool = False, stderr: bool = True) -> "Any":
        """One row per sample: ``pandas.DataFrame``.

        Columns: ``index``, ``label``, ``fused_pred``, ``pred_<coalition>`` (e.g.
        ``pred_audio+visual``, ``pred_empty``), ``phi_<modality>``, optionally
        ``value_<coalition>`` (``values=True``) and ``stderr_<modality>``, extras, then
        the identity: ``sample_id``, ``split`` (when known) and ``degraded_modality``
        (name; debiased data).
        """
        import pandas as pd

        data, _ = self._arrays(values, stderr)
        return pd.DataFrame(data)

    def meta(self) -> dict[str, Any]:
        """Settings and layout (JSON-serialisable), as stored in the parquet metadata."""
        return {
            "format": VALUATION_FORMAT,
            "modalities": self.modalities,
            "masks": self.masks.int().tolist(),
            "value": self.value,
            "empty": self.empty,
            "removal": self.removal,
            "split": self.split,
            "method": self.method,
            "info": self.info,
        }

    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write the table (all columns incl. values) atomically to a parquet file.

        Settings, coalition masks and column layout go to the file's key-value
        metadata (key ``mmcoop.valuation``), so `from_parquet` round-trips exactly.

        Returns:
            The path written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        data, cols = self._arrays(values=True, stderr=True)
        meta = self.meta()
        meta["columns"] = cols
        table = pa.table(data)
        table = table.replace_schema_metadata(encode_valuation_meta(meta))
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        return atomic_write_bytes(path, buf.getvalue().to_pybytes())

    @classmethod
    def from_parquet(cls, path: str | os.PathLike) -> "ValuationTable":
        """Read a table written by `to_parquet`."""
        import pyarrow.parquet as pq

        from mmcoop.errors import DataError

        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read valuation table {os.fspath(path)!r}: {exc}") from exc
        meta = decode_valuation_meta(table.schema.metadata)
        if meta is None:
            raise DataError(
                f"{os.fspath(path)!r} is not a valuation table (no {VALUATION_META_KEY.decode()} metadata); "
                "pass a file written by ValuationTable.to_parquet (valuation/*.parquet of a run)"
            )
        cols = meta["columns"]
        col = lambda name: torch.from_numpy(np.array(table.column(name).to_numpy(), copy=True))  # noqa: E731

        def mat(names: list[str]) -> Tensor:
            return torch.stack([col(c) for c in names], 1)

        return cls(
            modalities=meta["modalities"],
            index=col("index"),
            label=col("label"),
            phi=mat(cols["phi"]),
            values=mat(cols["values"]),
            coalition_preds=mat(cols["pred"]),
            masks=torch.tensor(meta["masks"], dtype=torch.bool).reshape(-1, len(meta["modalities"])),
            extras={k: col(k) for k in cols["extras"]},
            stderr=mat(cols["stderr"]) if cols["stderr"] else None,
            value=meta["value"],
            empty=meta["empty"],
            removal=meta["removal"],
            split=meta["split"],
            method=meta["method"],
            info=meta.get("info", {}),
            ids=[str(x) for x in table.column("sample_id").to_pylist()] if "sample_id" in table.column_names else None,
        )
