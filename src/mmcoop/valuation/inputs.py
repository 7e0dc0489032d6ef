"""Input-level valuation of a black-box model: exact Shapley values of input groups.

For any ``forward_func(inputs: dict[str, Tensor]) -> logits [B, C]`` (a user's
model, a fused ensemble, a function), every coalition ``S`` of the ``M`` inputs is
evaluated by running ``forward_func`` on the inputs with each modality outside ``S``
replaced by its *baseline* (default zeros of the same shape); the coalition values
(any registered value function, e.g. the paper's ``|S| * [correct]``) then give the
exact Shapley values with one matrix product (`shapley_from_coalitions`).

This is the feature-group Shapley value of Captum's ``ShapleyValues`` with
``feature_mask`` = one group per modality, computed exactly from all ``2**M``
coalitions instead of from sampled permutations (Captum: ``captum/attr/_core/
shapley_value.py``, class ``ShapleyValues``; the ``baselines`` and
``perturbations_per_eval`` arguments play the roles of ``baselines`` and
``batch_size`` here). Unlike the feature-level `ModalityValuator`, which
removes a modality by replacing its *encoder feature*, nothing is assumed about the
model: ``2**M`` forward passes over the batch instead of one. On a model whose
encoders map the baseline to a zero feature both give the same values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmcoop.data.protocol import check_ids
from mmcoop.errors import ConfigError, MMCoopError
from mmcoop.utils.modes import eval_mode
from mmcoop.valuation.coalitions import coalition_masks
from mmcoop.valuation.shapley import MAX_EXACT_MODALITIES, shapley_from_coalitions
from mmcoop.valuation.valuator import ValuationResult
from mmcoop.valuation.table import ValuationTable
from mmcoop.valuation.values import ValueFunction, get_value_function

ForwardFunc = Callable[[dict[str, Tensor]], Tensor]
Baseline = Tensor | float | int


def _check_inputs(inputs: Mapping[str, Tensor], labels: Tensor) -> tuple[list[str], int]:
    """Modality names (insertion order) and the batch size ``B``; ConfigError on bad shapes."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise ConfigError("inputs must be a non-empty dict modality name -> Tensor [B, *shape]")
    names = list(inputs)
    for name in names:
        if not isinstance(inputs[name], Tensor) or inputs[name].dim() < 1:
            raise ConfigError(f"inputs[{name!r}] must be a Tensor [B, *shape], got {type(inputs[name]).__name__}")
    sizes = {name: int(inputs[name].shape[0]) for name in names}
    b = sizes[names[0]]
    if any(s != b for s in sizes.values()):
        raise ConfigError(f"every input must have the same batch size B (first dimension); got {sizes}")
    if len(names) > MAX_EXACT_MODALITIES:
        raise ConfigError(
            f"input-level valuation runs 2**M coalitions; M = {len(names)} exceeds {MAX_EXACT_MODALITIES}: "
            "group the inputs into fewer modalities"
        )
    if not isinstance(labels, Tensor) or tuple(labels.shape) != (b,):
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ConfigError(f"labels must be an int64 Tensor [B] = [{b}] (one class per input row), got {shape}")
    return names, b


def _resolve_baselines(
    inputs: Mapping[str, Tensor], baselines: Mapping[str, Baseline] | None, b: int
) -> dict[str, Tensor]:
    """Baseline of every modality as a tensor ``[B, *shape]`` (an expanded view where possible).

    Missing modalities get zeros; a scalar fills the shape; a tensor must broadcast to ``[B, *shape]``.
    """
    given = dict(baselines or {})
    unknown = [k for k in given if k not in inputs]
    if unknown:
        raise ConfigError(
            f"baselines given for unknown modalities {unknown}; the inputs' modalities are {list(inputs)}"
        )
    out: dict[str, Tensor] = {}
    for name, x in inputs.items():
        base = given.get(name, 0.0)
        if isinstance(base, bool) or not isinstance(base, (Tensor, int, float)):
            raise ConfigError(f"baselines[{name!r}] must be a Tensor or a number, got {type(base).__name__}")
        t = torch.as_tensor(base, dtype=x.dtype, device=x.device)
        try:
            out[name] = t.expand(b, *x.shape[1:])
        except RuntimeError:
            raise ConfigError(
                f"baselines[{name!r}] of shape {tuple(t.shape)} does not broadcast to the input's shape "
                f"[B, *shape] = {list(x.shape)}"
            ) from None
    return out


class InputValuator:
    """Exact Shapley values of a black-box model's inputs (one group per modality).

    Captum style: configure once, then `attribute` batches; the functional form
    is `valuate_inputs`.

    Args:
        forward_func: ``inputs dict[str, Tensor [R, *shape]] -> logits [R, C]``; called
            under ``torch.no_grad`` with the same keys as the valued inputs. An
            ``nn.Module`` runs in eval mode (its submodules' modes are restored): a
            BatchNorm in training mode would make a row's logits depend on the rows
            beside it.
        value: value function name (``paper`` (default), ``correct``, ``prob``,
            ``logprob``; see `VALUE_FUNCTIONS`) or a ``ValueFunction``.
        empty: ``v(empty)`` convention, ``"zero"`` or ``"model"``; ``None`` = the value
            function's default. Under ``"model"`` the empty coalition is the
            all-baseline input, scored like any other coalition.
        batch_size: most rows per ``forward_func`` call (the ``2**M x B`` rows are
            cut into chunks in coalition-major order); ``None`` = ``B`` rows, one
            coalition per call (memory of one ordinary forward over the batch).

    Example:
        >>> valuator = InputValuator(model, value="paper", batch_size=1024)
        >>> res = valuator.attribute({"audio": a, "visual": v}, labels, baselines={"audio": 0.0})
        >>> res.phi.shape, res.values.shape        # [B, 2], [B, 4]
    """

    def __init__(
        self,
        forward_func: ForwardFunc,
        value: str | ValueFunction = "paper",
        empty: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not callable(forward_func):
            raise ConfigError(
                f"forward_func must be callable (inputs dict -> logits), got {type(forward_func).__name__}"
            )
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"batch_size must be >= 1 (rows per forward call) or None, got {batch_size}")
        self.forward_func = forward_func
        self.value_fn = get_value_function(value)
        self.empty = self.value_fn.resolve_empty(empty)
        self.batch_size = None if batch_size is None else int(batch_size)

    @property
    def value_name(self) -> str:
        return self.value_fn.name

    def attribute(
        self, inputs: Mapping[str, Tensor], labels: Tensor, baselines: Mapping[str, Baseline] | None = None
    ) -> ValuationResult:
        """Value every input modality of every sample of a batch.

        Args:
            inputs: modality name -> ``[B, *shape]`` (modality order = insertion order).
            labels: int64 ``[B]`` true classes.
            baselines: modality name -> what replaces it when absent: a number or a
                tensor broadcastable to ``[B, *shape]``; unnamed modalities get zeros.

        Returns:
            `ValuationResult` with ``phi [B, M]``, ``values`` and
                ``coalition_preds`` ``[B, 2**M]``, ``masks`` bool ``[2**M, M]`` in the
                bitmask order of `coalition_masks` (row 0 = empty, last = all),
                ``method="exact"``.
        """
        names, b = _check_inputs(inputs, labels)
        base = _resolve_baselines(inputs, baselines, b)
        first = inputs[names[0]]
        masks = coalition_masks(len(names), first.device)
        logits = self._coalition_logits(inputs, base, names, masks, b)  # [B, K, C]
        labels = labels.to(logits.device).long()
        masks = masks.to(logits.device)
        preds = logits.max(-1).indices  # first maximal index, as in ModalityValuator
        values = self.value_fn.values_from_preds(preds, labels, masks, self.empty, logits.dtype)
        if values is None:
            values = self.value_fn(logits, labels, masks, self.empty)
        return ValuationResult(shapley_from_coalitions(values), values, preds, masks, None, "exact")

    def _coalition_logits(
        self, inputs: Mapping[str, Tensor], base: dict[str, Tensor], names: list[str], masks: Tensor, b: int
    ) -> Tensor:
        """Logits ``[B, K, C]`` of every coalition: rows ``r = c * B + i`` in chunks of ``batch_size``."""
        k = masks.shape[0]
        total = k * b
        if total == 0:
            return torch.zeros(0, k, 1, device=masks.device)
        step = self.batch_size or b
        device = masks.device
        mode = eval_mode(self.forward_func) if isinstance(self.forward_func, nn.Module) else contextlib.nullcontext()
        chunks: list[Tensor] = []
        with mode, torch.no_grad():
            for start in range(0, total, step):
                rows = torch.arange(start, min(start + step, total), device=device)
                coal, sample = rows // b, rows % b
                batch = {}
                for j, name in enumerate(names):
                    x = inputs[name]
                    keep = masks[coal, j].view(-1, *([1] * (x.dim() - 1)))
                    batch[name] = torch.where(keep, x.index_select(0, sample), base[name].index_select(0, sample))
                out = self.forward_func(batch)
                if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != rows.numel():
                    shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise MMCoopError(
                        f"forward_func must return logits [R, C] for a dict of R-row inputs; "
                        f"got {shape} for R = {rows.numel()}"
                    )
                chunks.append(out)
        logits = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
        return logits.view(k, b, -1).transpose(0, 1)


def valuate_inputs(
    forward_func: ForwardFunc,
    inputs: Mapping[str, Tensor],
    labels: Tensor,
    baselines: Mapping[str, Baseline] | None = None,
    value: str | ValueFunction = "paper",
    empty: str | None = None,
    batch_size: int | None = None,
    index: Tensor | Sequence[int] | Sequence[str] | None = None,
    ids: Sequence[Any] | None = None,
) -> ValuationTable:
    """Exact Shapley value of every input modality of every sample, as a `ValuationTable`
    (the same answer shape as `valuate_dataset`).

    Functional form of `InputValuator` (see it for the arguments): ``2**M``
    coalitions, each absent modality replaced by its baseline (default zeros),
    ``forward_func`` under ``torch.no_grad`` in chunks of at most ``batch_size`` rows.

    Args:
        forward_func: ``inputs dict -> logits [R, C]``.
        inputs: modality name -> ``[B, *shape]``; the columns of phi follow its key order.
        labels: int64 ``[B]``.
        baselines: modality name -> number or tensor broadcastable to ``[B, *shape]``.
        value: value function name or a ``ValueFunction`` (default ``paper``).
        empty: ``v(empty)`` convention (``None`` = the value function's default).
        batch_size: most rows per forward call (``None`` = ``B``).
        index: int64 ``[B]`` row numbers recorded as the table's ``index`` (default ``arange(B)``);
            a list of ``B`` strings is taken as ``ids``.
        ids: ``B`` stable sample ids (strings; ints and paths are turned into strings), the
            table's ``sample_id`` (default: the ``index`` as strings).

    Returns:
        `ValuationTable` (CPU): ``phi [B, M]`` (``phi.sum(1) == v(all) - v(empty)`` per
            sample), ``values`` and ``coalition_preds`` ``[B, 2**M]``, ``label``; ``.to_pandas()``,
            ``.mean_contribution()``, ``.unimodal_accuracy()`` as for a dataset.

    Example:
        >>> table = valuate_inputs(model, {"audio": a, "visual": v}, labels)
        >>> table.phi.shape, table.mean_contribution()          # [B, 2], {"audio": ..., "visual": ...}
    """
    valuator = InputValuator(forward_func, value=value, empty=empty, batch_size=batch_size)
    res = valuator.attribute(inputs, labels, baselines)
    rows, names = _rows_and_ids(index, ids, int(res.phi.shape[0]))
    return ValuationTable.from_result(
        res,
        list(inputs),
        labels,
        rows,
        value=valuator.value_name,
        empty=valuator.empty,
        removal="baseline",
        ids=names,
    )


def _rows_and_ids(index: Any, ids: Sequence[Any] | None, b: int) -> tuple[Tensor | None, list[str] | None]:
    """``valuate_inputs``' ``index`` / ``ids`` as int64 rows ``[B]`` (or ``None``) and ``B`` id strings
    (or ``None``); strings given as ``index`` are ids. `ConfigError` / `DataError` name the argument."""
    if index is not None and not isinstance(index, Tensor):
        given = list(index)
        if any(isinstance(x, str) for x in given):
            if ids is not None:
                raise ConfigError("valuate_inputs: give the string sample ids as ids= (index= takes row numbers)")
            index, ids = None, given
        else:
            index = torch.as_tensor(given, dtype=torch.long)
    if index is not None and tuple(index.shape) != (b,):
        raise ConfigError(
            f"valuate_inputs: index must hold one row number per sample, [B] = [{b}]; got {tuple(index.shape)}"
        )
    return index, None if ids is None else check_ids(list(ids), b, "valuate_inputs ids")
