"""``hf:<folder>``: a Hugging Face ``transformers`` model from a local folder, as a ``tokens`` encoder.

``encoders.text: hf:/models/bert-base-uncased`` loads ``AutoModel.from_pretrained(folder,
local_files_only=True)`` (the folder ``save_pretrained`` writes: ``config.json`` plus the
weights; nothing is downloaded) and encodes token ids ``[B, L]`` with the attention mask
``ids != spec.pad_id``. Tokenize the texts with the same model's tokenizer
(`mmcoop.data.text.tokenize` on its folder, which also gives the padding id).
Pooling of ``last_hidden_state`` ``[B, L, H]``:

- ``cls`` (default): position 0 (BERT's ``[CLS]``);
- ``mean``: the mean over the attended positions;
- ``pooler``: the model's ``pooler_output`` (BERT's tanh layer over ``[CLS]``).

Then a projection to ``dim`` (none when ``H == dim``). Needs ``pip install 'mmcoop[text]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mmcoop.errors import ConfigError, DataError
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.pretrained import building_on_meta, local_path, projection
from mmcoop.models.transformer import check_pooling, masked_mean
from mmcoop.utils.optional import import_optional

POOLINGS = ("cls", "mean", "pooler")


def _quiet_load(transformers: Any, folder: Path) -> nn.Module:
    """``AutoModel.from_pretrained(folder, local_files_only=True)`` without transformers' progress bar
    (a run's console shows one line per epoch, not one bar per model load)."""
    bars = transformers.utils.logging
    shown = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()
    try:
        return transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
    finally:
        if shown:
            bars.enable_progress_bar()


@ENCODERS.register("hf")
class HuggingFaceEncoder(nn.Module):
    """``AutoModel`` from a local folder on token ids ``[B, L]`` -> ``[B, dim]``.

    Args:
        shape: per-sample shape ``[L]``.
        dim: output width.
        source: the model folder (``hf:<folder>``).
        spec: the ``tokens`` modality's spec (its ``pad_id`` makes the attention mask).
        pooling: ``cls``, ``mean`` or ``pooler``.
    """

    def __init__(
        self, shape: tuple[int, ...], dim: int = 64, *, source: str, spec: Any = None, pooling: str = "cls"
    ) -> None:
        super().__init__()
        what = f"encoder 'hf:{source}'"
        if len(shape) != 1 or (spec is not None and spec.kind != "tokens"):
            raise ConfigError(
                f"{what} encodes a tokens modality [L]; got kind {getattr(spec, 'kind', '?')} {list(shape)}"
            )
        self.pooling = check_pooling(pooling, POOLINGS, what)
        folder = local_path(source, what, folder=True)
        local_path(folder / "config.json", f"{what} (a folder written by save_pretrained)")
        transformers = import_optional("transformers", "text", what)
        try:
            if building_on_meta():  # the size estimate: the architecture only, no weights read
                conf = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
                self.backbone = transformers.AutoModel.from_config(conf)
            else:
                self.backbone = _quiet_load(transformers, folder)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{what}: transformers cannot load the model in {folder} ({str(e)[:400]})") from None
        cfg = self.backbone.config
        limit = getattr(cfg, "max_position_embeddings", None)
        if limit is not None and int(shape[0]) > int(limit):
            raise ConfigError(
                f"{what}: texts of {shape[0]} tokens exceed the model's {limit} positions; tokenize shorter"
            )
        self.vocab_size = int(cfg.vocab_size)
        if spec is not None and spec.vocab_size is not None and spec.vocab_size > self.vocab_size:
            raise ConfigError(
                f"{what}: the modality's vocabulary ({spec.vocab_size} ids) is larger than the model's "
                f"({self.vocab_size}); tokenize with this model's tokenizer"
            )
        self.pad_id = int(getattr(spec, "pad_id", 0))
        self.proj = projection(int(cfg.hidden_size), dim)
        self.out_dim = dim

    def forward(self, ids: Tensor) -> Tensor:
        if ids.is_floating_point():
            raise DataError(f"hf encoder got {ids.dtype} inputs; a tokens modality holds int64 ids")
        mask = ids != self.pad_id
        out = self.backbone(input_ids=ids, attention_mask=mask.long())
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "mean":
            pooled = masked_mean(out.last_hidden_state, mask)
        else:
            pooled = out.last_hidden_state[:, 0]
        return self.proj(pooled)
