"""Lazily decoded files per sample as a source (the base for audio / video-frame readers).

A sample is a *record* (anything: a path, a dict of paths, a row of a CSV) and each
modality has a *decoder* turning a record into that modality's tensor ``[*shape]``::

    FileSource(records=[{"wav": "a.wav", "jpg": "a.jpg"}, ...], labels=[3, ...],
               decoders={"audio": read_spec, "visual": read_image})

A decoder is ``decode(record)`` or ``decode(record, train)`` (a parameter named
``train``, or two required positional parameters): the second form lets
decoding itself depend on the mode (e.g. a random clip of the frames in training, the
centre clip in evaluation). Decoding runs where the batch is fetched, i.e. in the
``DataLoader`` workers (``make_loader(..., num_workers=k)``). A decoder failing on a
record raises one `DataError` naming the modality, record
index and record. Specs come from decoding record 0 in eval mode unless given.

Sample ids (`sample_ids`): ``ids=``; else, for records that
are paths (or dicts/tuples of paths: the first one), the path relative to ``root``
(as given when no ``root`` or outside it), e.g. ``"dog/0001.wav"``; else the index.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from torch import Tensor

from mmcoop.data.items import as_labels, as_tensor, resolve_specs, stack_samples
from mmcoop.data.protocol import ModalitySpec, Transforms, check_ids
from mmcoop.errors import DataError, MMCoopError

Decoder = Callable[..., Any]


def _mode_arg(fn: Decoder) -> str | None:
    """How ``fn`` wants the mode: ``"kw"`` (a parameter named ``train``), ``"pos"`` (two required
    positional parameters) or ``None`` (record only)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.name == "train" and p.kind is not p.POSITIONAL_ONLY for p in params):
        return "kw"
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return "pos" if len(required) >= 2 else None


class FileSource:
    """Per-sample records decoded lazily, one decoder per modality (see the module docstring).

    Args:
        records: one record per sample ``[N]`` (must pickle, for workers).
        labels: class per sample ``[N]``.
        decoders: modality -> ``decode(record[, train]) -> Tensor/array [*shape]``, in modality order.
        num_classes: number of classes (default ``max(labels) + 1``).
        specs: explicit specs (default: from decoding record 0).
        kinds: modality -> kind overriding the guess by ndim.
        extras: optional name -> tensor ``[N]`` returned with every fetch.
        transforms: batched train/eval transforms applied after stacking.
        name: how messages name this source.
        ids: stable id per sample ``[N]`` (default: see the module docstring).
        root: folder the record paths are made relative to for the default ids.
    """

    def __init__(
        self,
        records: Sequence[Any],
        labels: Any,
        decoders: Mapping[str, Decoder],
        num_classes: int | None = None,
        specs: Sequence[ModalitySpec] | None = None,
        kinds: Mapping[str, str] | None = None,
        extras: Mapping[str, Tensor] | None = None,
        transforms: Transforms | Mapping[str, Any] | None = None,
        name: str = "files",
        ids: Sequence[Any] | None = None,
        root: str | os.PathLike | None = None,
    ) -> None:
        self.records = list(records)
        self.name = name
        self._labels, self.num_classes = as_labels(labels, num_classes, f"{name} labels")
        n = len(self.records)
        if len(self._labels) != n:
            raise DataError(f"{name}: {len(self._labels)} labels for {n} records; give one label per record")
        if n == 0:
            raise DataError(f"{name}: no records; it needs at least one sample")
        if not decoders:
            raise DataError(f"{name}: no decoders; give one decode function per modality")
        self.decoders = dict(decoders)
        self._mode = {m: _mode_arg(fn) for m, fn in self.decoders.items()}
        names = [s.name for s in specs] if specs is not None else list(self.decoders)
        missing = [m for m in names if m not in self.decoders]
        if missing:
            raise DataError(f"{name}: no decoder for modalities {missing}")
        first = self._decode(0, False, names) if specs is None else {}
        self.specs = resolve_specs(first, specs, names, kinds, f"{name} record 0")
        self.extras = {k: v for k, v in (extras or {}).items()}
        for k, v in self.extras.items():
            if tuple(v.shape[:1]) != (n,):
                raise DataError(f"{name}: extra {k!r} has shape {tuple(v.shape)}; it needs [N] = [{n}]")
        self.transforms = Transforms.coerce(transforms)
        self.root = None if root is None else Path(root)
        self.ids = check_ids(ids, n, f"{name} ids") if ids is not None else self._path_ids()

    def _path_ids(self) -> list[str] | None:
        """Each record's (first) path relative to ``root``; ``None`` unless every record has one and they differ."""
        out = []
        for rec in self.records:
            path = _first_path(rec)
            if path is None:
                return None
            p = Path(path)
            if self.root is not None:
                try:
                    p = p.relative_to(self.root)
                except ValueError:
                    pass
            out.append(p.as_posix())
        return out if len(set(out)) == len(out) else None

    def sample_ids(self) -> list[str] | None:
        """``ids=``, else the record paths relative to ``root``, else ``None`` (the indices)."""
        return self.ids

    def _describe(self, i: int) -> str:
        rec = repr(self.records[i])
        return f"{self.name} record {i} ({rec if len(rec) <= 120 else rec[:117] + '...'})"

    def _decode(self, i: int, train: bool, names: Sequence[str]) -> dict[str, Tensor]:
        rec = self.records[i]
        out = {}
        for m in names:
            fn = self.decoders[m]
            try:
                mode = self._mode[m]
                x = fn(rec, train=train) if mode == "kw" else fn(rec, train) if mode == "pos" else fn(rec)
            except MMCoopError:
                raise
            except Exception as e:  # noqa: BLE001 - one message naming the record, original chained
                raise DataError(
                    f"decoding {m!r} of {self._describe(i)} failed ({type(e).__name__}: {e}); fix or remove that file"
                ) from e
            out[m] = as_tensor(x, lambda m=m: f"the {m!r} decoder's output for {self._describe(i)}")
        return out

    def __len__(self) -> int:
        return len(self.records)

    def labels(self) -> Tensor:
        return self._labels

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """Decode records ``rows`` ``[B]``, check shapes, stack, transform; see `Source`."""
        rows = rows.cpu()
        idx = rows.tolist()
        names = [s.name for s in self.specs]
        samples = [self._decode(i, train, names) for i in idx]
        inputs = stack_samples(samples, self.specs, lambda p: self._describe(idx[p]))
        out: dict[str, Any] = {"inputs": self.transforms(inputs, train), "label": self._labels[rows]}
        for k, v in self.extras.items():
            out[k] = v[rows]
        return out

    def __repr__(self) -> str:
        return f"FileSource({self.name!r}, N={len(self)}, modalities={[s.name for s in self.specs]})"


def _first_path(record: Any) -> str | os.PathLike | None:
    """A path record itself, or the first path of a dict/tuple/list record; ``None`` if it holds none."""
    if isinstance(record, (str, os.PathLike)):
        return record
    values = record.values() if isinstance(record, Mapping) else record if isinstance(record, (tuple, list)) else ()
    return next((v for v in values if isinstance(v, (str, os.PathLike))), None)


__all__ = ["FileSource", "Decoder"]
