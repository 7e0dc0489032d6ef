"""Online valuation: per-sample Shapley values recorded from the training pass's own features.

The paper values every training sample in a separate eval-mode inference pass at each
epoch boundary. The training forward pass already computes every sample's per-modality
features ``[B, M, D]``; the ``2**M`` coalition logits on those features (detached) cost
one small head evaluation per coalition and no input at all. `OnlineRecorder`
keeps, per storage row, the coalition values, the coalition predictions and phi of the
last time the row was seen as an *original* sample (all modalities kept) during an
epoch; at the end of the epoch `OnlineRecorder.commit` gathers the records of
every DDP rank (every rank then holds the same records) and `OnlineRecorder.table`
turns them into the same `ValuationTable` a pass returns, from
which the next epoch's plan is built.

What differs from the pass (documented in ``docs/guides/online-valuation.md``):

* the features are the training pass's: train-mode encoders (dropout active, BatchNorm
  batch statistics) on training transforms (augmentation); the fusion head that turns
  them into coalition logits runs in eval mode, as in the pass;
* the weights move during the epoch: a sample is valued with the weights of the step
  that saw it, not with the weights at the epoch boundary.

On a model without dropout/BatchNorm/augmentation and a learning rate of 0 the records
equal the pass exactly (``tests/enhance/test_online.py``).

Any training loop can use it::

    recorder = OnlineRecorder(value="paper")
    recorder.start(num_samples=len(train_storage), epoch=e)
    for batch in loader:
        feats, logits = model.encode(batch["inputs"]), ...
        ...  # loss, backward, step
        recorder.record(model, feats, batch["label"], batch["index"], batch["keep"])
    recorder.commit()                       # every DDP rank calls it
    table = recorder.table()                # ValuationTable of the epoch's samples
    plan = sample_level_plan(table.phi, table.index)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from mmcoop.utils.dist import all_gather_objects, all_gather_rows, world_size
from mmcoop.valuation import ModalityValuator, ValuationTable, unwrap_model
from mmcoop.valuation.values import ValueFunction

if TYPE_CHECKING:  # pragma: no cover
    from mmcoop.models.protocol import MultimodalModel

#: batch keys that are not per-sample extras
_BATCH_KEYS = ("inputs", "label", "index", "keep")
_FIELDS = ("label", "phi", "values", "preds")


class OnlineRecorder:
    """Per-sample valuations recorded from training features, per storage row.

    Args:
        value: coalition value function (name or `ValueFunction`),
            as for `valuate_dataset`.
        empty: ``v(empty)`` convention (``None`` = the value function's default).

    Attributes:
        epoch: epoch of the records being made (after `start`) or committed.
        seconds: host seconds spent in `record` and `commit` this epoch (the
            committed records keep theirs under ``committed["seconds"]``).

    Example:
        >>> rec = OnlineRecorder("paper")
        >>> rec.start(num_samples=100, epoch=0)
        >>> rec.record(model, feats, labels, rows, keep)     # feats [B, M, D] from training
        >>> rec.commit(); rec.table().phi.shape               # [N_seen, M]
    """

    def __init__(self, value: str | ValueFunction = "paper", empty: str | None = None) -> None:
        self.value = value
        self.empty = empty
        self.epoch = -1
        self.seconds = 0.0
        self._valuator: ModalityValuator | None = None
        self._num_samples = 0
        self._buf: dict[str, Tensor] | None = None  # dense [N, ...] buffers of the epoch being recorded
        self._extras: dict[str, Tensor] = {}
        self._recording = False
        self.committed: dict[str, Any] | None = None  # compact records of the last committed epoch

    # -- recording -------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """Whether `record` stores anything (between `start` and `commit`)."""
        return self._recording

    def start(self, num_samples: int, epoch: int) -> None:
        """Begin recording epoch ``epoch`` for a split of ``num_samples`` storage rows
        (discards what an earlier, uncommitted epoch recorded)."""
        self._num_samples, self.epoch = int(num_samples), int(epoch)
        self._buf, self._extras, self._recording, self.seconds = None, {}, True, 0.0

    def stop(self) -> None:
        """Record nothing until the next `start` (committed records are kept)."""
        self._buf, self._extras, self._recording = None, {}, False

    def _valuator_for(self, model: nn.Module) -> ModalityValuator:
        net = unwrap_model(model)
        if self._valuator is None or self._valuator.model is not net:
            self._valuator = ModalityValuator(cast("MultimodalModel", net), self.value, self.empty)
        return self._valuator

    @torch.no_grad()
    def record(
        self,
        model: nn.Module,
        feats: Tensor,
        labels: Tensor,
        rows: Tensor,
        keep: Tensor | None = None,
        batch: Mapping[str, Any] | None = None,
    ) -> None:
        """Value the original samples of a training batch from its features.

        Rows whose ``keep`` mask removes a modality (the duplicated units of the
        ``duplicate`` execution) are skipped. The fusion head runs in eval mode (the
        modes are restored); call it inside the run's autocast for the run's precision.

        Args:
            model: the model whose ``feats`` these are (DDP/compile wrappers are unwrapped).
            feats: ``[B, M, D]`` features of the training forward pass (detached here).
            labels: int64 ``[B]``.
            rows: int64 ``[B]`` storage rows (``batch["index"]``).
            keep: bool ``[B, M]`` keep-masks (``None`` = every row is an original).
            batch: the batch, for per-sample extras (tensors ``[B]`` such as ``degraded``).
        """
        if not self._recording:
            return
        t0 = time.perf_counter()
        valuator = self._valuator_for(model)
        feats = feats.detach()
        res = valuator.attribute_features(feats, labels)
        dev, n = feats.device, self._num_samples
        rows = rows.to(dev).long()
        if keep is not None:  # units go to a scratch row n (no host sync, unlike boolean indexing)
            rows = torch.where(keep.to(dev).all(1), rows, torch.full_like(rows, n))
        if self._buf is None:  # dense [N + 1, ...]: row N is the scratch row
            m, k = res.phi.shape[1], res.values.shape[1]
            self._buf = {
                "seen": torch.zeros(n + 1, dtype=torch.bool, device=dev),
                "label": torch.zeros(n + 1, dtype=torch.long, device=dev),
                "phi": torch.zeros(n + 1, m, dtype=torch.float32, device=dev),
                "values": torch.zeros(n + 1, k, dtype=torch.float32, device=dev),
                "preds": torch.zeros(n + 1, k, dtype=torch.long, device=dev),
            }
            self._masks, self._method = res.masks.cpu(), res.method
        buf = self._buf
        buf["seen"][rows] = True
        buf["label"][rows] = labels.to(dev).long()
        buf["phi"][rows] = res.phi.float()
        buf["values"][rows] = res.values.float()
        buf["preds"][rows] = res.coalition_preds
        for key, val in (batch or {}).items():
            if key in _BATCH_KEYS or not isinstance(val, Tensor) or tuple(val.shape) != tuple(rows.shape):
                continue
            if key not in self._extras:
                self._extras[key] = torch.zeros(n + 1, dtype=val.dtype, device=dev)
            self._extras[key][rows] = val.to(dev)
        self.seconds += time.perf_counter() - t0

    # -- committing ------------------------------------------------------------------------
    def commit(self) -> None:
        """End the epoch's recording: gather every rank's records (DDP; every rank must call
        it) and keep them as the committed records. A row seen by several ranks (the
        sampler's padding) keeps the record of the lowest rank, so every rank holds the same."""
        if not self._recording:
            return
        t0 = time.perf_counter()
        n = self._num_samples  # drop the scratch row of the units
        buf = None if self._buf is None else {k: v[:n] for k, v in self._buf.items()}
        extras = {k: v[:n] for k, v in self._extras.items()}
        if world_size() > 1:
            buf, extras = self._gather(buf, extras)
        if buf is None:  # nothing recorded anywhere
            self.committed = None
        else:
            idx = buf["seen"].nonzero().flatten()
            rec: dict[str, Any] = {"epoch": self.epoch, "index": idx.cpu()}
            for f in _FIELDS:
                rec[f] = buf[f][idx].cpu()
            rec["extras"] = {k: v[idx].cpu() for k, v in extras.items()}
            rec["masks"], rec["method"] = self._masks.clone(), self._method
            vf = self._valuator
            rec["value"] = vf.value_name if vf is not None else str(self.value)
            rec["empty"] = vf.empty if vf is not None else str(self.empty)
            rec["modalities"] = list(vf.modalities) if vf is not None else None
            self.committed = rec
        self._buf, self._extras, self._recording = None, {}, False
        self.seconds += time.perf_counter() - t0
        if self.committed is not None:
            self.committed["seconds"] = float(self.seconds)

    def _gather(
        self, buf: dict[str, Tensor] | None, extras: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor] | None, dict[str, Tensor]]:
        """Merge the ranks' dense buffers (same calls on every rank, whatever each recorded)."""
        layout = (
            None
            if buf is None
            else {
                "m": int(buf["phi"].shape[1]),
                "k": int(buf["values"].shape[1]),
                "masks": self._masks,
                "method": self._method,
            }
        )
        ext_layout = {k: v.dtype for k, v in extras.items()}
        metas = cast(
            "list[tuple[dict[str, Any] | None, dict[str, torch.dtype]]]", all_gather_objects((layout, ext_layout))
        )  # every rank sends this same pair
        known = [lay for lay, _ in metas if lay is not None]
        if not known:
            return None, {}
        lay = known[0]
        n, w = self._num_samples, world_size()
        dev = buf["phi"].device if buf is not None else torch.device("cpu")
        if buf is None:  # this rank saw no original sample: empty buffers of the common layout
            self._masks, self._method = lay["masks"], lay["method"]
            buf = {
                "seen": torch.zeros(n, dtype=torch.bool, device=dev),
                "label": torch.zeros(n, dtype=torch.long, device=dev),
                "phi": torch.zeros(n, lay["m"], dtype=torch.float32, device=dev),
                "values": torch.zeros(n, lay["k"], dtype=torch.float32, device=dev),
                "preds": torch.zeros(n, lay["k"], dtype=torch.long, device=dev),
            }
        names: dict[str, torch.dtype] = {}
        for _, ext in metas:
            for key, dtype in ext.items():
                names.setdefault(key, dtype)
        seen = all_gather_rows(buf["seen"]).view(w, n)  # [W, N]
        first = seen.to(torch.uint8).argmax(0)  # lowest rank that saw each row (0 where none did)
        cols = torch.arange(n, device=seen.device)
        out = {"seen": seen.any(0)}
        for f in _FIELDS:
            whole = all_gather_rows(buf[f]).view(w, n, *buf[f].shape[1:])
            out[f] = whole[first, cols]
        ext_out: dict[str, Tensor] = {}
        for key in sorted(names):
            local = extras.get(key)
            if local is None:
                local = torch.zeros(n, dtype=names[key], device=dev)
            whole = all_gather_rows(local).view(w, n)
            ext_out[key] = whole[first, cols]
        return out, ext_out

    # -- reading ---------------------------------------------------------------------------
    def has_records(self, epoch: int | None = None) -> bool:
        """Whether committed records exist (of ``epoch``, when given)."""
        return self.committed is not None and (epoch is None or int(self.committed["epoch"]) == int(epoch))

    def table(self, rows: Tensor | None = None, modalities: list[str] | None = None) -> ValuationTable:
        """The committed records as a `ValuationTable` (CPU).

        Args:
            rows: storage rows wanted, in the order wanted (rows never seen are left out);
                ``None`` = every recorded row, ascending.
            modalities: the modality names (default: the valued model's).

        Returns:
            One row per recorded sample, like `valuate_dataset`'s table
                (``info["valuation"] = "online"``, ``info["recorded_epoch"]``).
        """
        rec = self.committed
        if rec is None:
            raise RuntimeError("no committed online records: call start(), record() and commit() first")
        if rows is None:
            pos = torch.arange(len(rec["index"]))
        else:
            rows = torch.as_tensor(rows, dtype=torch.long).cpu()
            size = int(
                max(int(rec["index"].max()) + 1 if len(rec["index"]) else 0, int(rows.max()) + 1 if len(rows) else 0)
            )
            where = torch.full((size,), -1, dtype=torch.long)
            where[rec["index"]] = torch.arange(len(rec["index"]))
            pos = where[rows]
            pos = pos[pos >= 0]
        if modalities is None:
            modalities = rec.get("modalities") or [f"m{k}" for k in range(rec["phi"].shape[1])]
        return ValuationTable(
            modalities=list(modalities),
            index=rec["index"][pos],
            label=rec["label"][pos],
            phi=rec["phi"][pos],
            values=rec["values"][pos],
            coalition_preds=rec["preds"][pos],
            masks=rec["masks"],
            extras={k: v[pos] for k, v in rec["extras"].items()},
            value=str(rec["value"]),
            empty=str(rec["empty"]),
            method=rec["method"],
            info={"valuation": "online", "recorded_epoch": int(rec["epoch"])},
        )

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The committed records (tensors, ints and strings: loadable with ``weights_only=True``)."""
        return {} if self.committed is None else dict(self.committed)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`; anything being recorded is dropped (the epoch restarts)."""
        self.stop()
        self.committed = dict(state) if state else None
        if self.committed is not None:
            self.epoch = int(self.committed["epoch"])
