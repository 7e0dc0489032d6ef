"""UPMC Food-101 (image + recipe-page title) in BalanceBenchmark's layout: ``food101``.

Source of the facts: GeWu-Lab/BalanceBenchmark (commit 4c1482f),
``balancemm/datasets/food_dataset.py`` (class ``FOOD101Dataset``) and
``configs/dataset_config.yaml`` (``FOOD101``: ``classes: 101``, ``validation: false``,
text ``input_dim: 40``):

- ``texts/<split>_titles.csv`` (``pandas.read_csv``: a header with ``Image_path``, ``text``,
  ``label``), one row per sample; the image is ``images/<split>/<label>/<Image_path>``;
- classes: the sorted folder names of ``images/<split>`` (index = position);
- text: ``clean_text`` (a leading ``RT `` removed, everything from ``http(s)://`` to the end
  of the line removed, ``#`` removed), then a BERT tokenizer, ``padding="max_length",
  max_length=40, truncation=True``: int64 ids ``[40]`` (the ``tokens`` kind here, padding id
  from the tokenizer);
- image: eval ``Resize((224, 224))``, ImageNet normalisation; train adds
  ``RandomRotation(30)`` and a horizontal flip;
- no validation split (the benchmark validates on test).

Tokenizer: ``tokenizer`` names a Hugging Face tokenizer folder (BERT's, for an ``hf:`` text
encoder: ``AutoTokenizer.from_pretrained(folder, local_files_only=True)``) or a vocabulary
file (`mmcoop.data.text`); without one, a vocabulary of the training titles' words
(`build_vocab`, at most ``vocab_size`` entries) for a ``tokens``
encoder trained from scratch. Differences: no ``RandomRotation(30)`` in training (resize +
flip); val is a seeded, class-stratified ``val_fraction`` (0.1) of train; a header-less csv
(``Image_path,text,label`` rows, the UPMC files as distributed) is read too; rows whose
image is absent are skipped and counted. Sample ids: ``<label>/<Image_path>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mmcoop.data.base import ModalitySpec
from mmcoop.data.presets import BALANCE_TRAIN, register_preset
from mmcoop.data.text import build_vocab, tokenize, tokenize_with_vocab
from mmcoop.datasets._layout import OnMissing, carve_val, class_index, fill, keep_present, split_sources
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, ModalityLoader, layout_error
from mmcoop.media.frame_folders import ImageFile
from mmcoop.media.transforms import Crop

NAME = "food101"
LAYOUT = """
<root>/
  images/train/<class>/<image>.jpg    (and images/test/...): classes = sorted folder names
  texts/train_titles.csv              header Image_path,text,label (or header-less rows in that order)
  texts/test_titles.csv               (val: a seeded, stratified val_fraction of train)
"""
TEXTS = "texts/{split}_titles.csv"
IMAGES = "images/{split}"
VAL_TAG = 0xF00D
COLUMNS = ("Image_path", "text", "label")


def clean_text(raw: str) -> str:
    """BalanceBenchmark's ``clean_text``: drop a leading ``RT ``, a URL to the end of the line, and ``#``.

    Example:
        >>> clean_text("RT #Easy apple pie https://example.org/pie")
        'Easy apple pie '
    """
    t = re.sub(r"^RT[\s]+", "", raw)
    t = re.sub(r"https?:\/\/.*[\r\n]*", "", t)
    return re.sub(r"#", "", t)


def read_titles(path: Path) -> list[tuple[str, str, str]]:
    """``(Image_path, text, label)`` rows of a titles csv (with the benchmark's header, or header-less).

    Raises:
        DataError: missing or unreadable file, or not three such columns (file named, with the layout).
    """
    if not path.is_file():
        raise layout_error(f"missing titles file {path}", LAYOUT)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not {"text", "label"} <= set(df.columns):
            df = pd.read_csv(path, dtype=str, keep_default_na=False, header=None)
            if df.shape[1] != 3:
                raise ValueError(f"{df.shape[1]} columns and no Image_path,text,label header")
            df.columns = list(COLUMNS)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise layout_error(f"unreadable titles file {path} ({e})", LAYOUT) from None
    image_col = (
        "Image_path" if "Image_path" in df.columns else next(c for c in df.columns if c not in ("text", "label"))
    )
    return list(zip(df[image_col].astype(str), df["text"].astype(str), df["label"].astype(str)))


@dataclass
class TokenRows:
    """The ``tokens`` modality of a split, tokenised once at load: ``load(row)`` -> int64 ``[L]``."""

    spec: ModalitySpec
    ids: Tensor

    def load(self, path: Any, train: bool, gen: torch.Generator | None) -> Tensor:
        return self.ids[int(path)]

    def finish(self, batch: Tensor) -> Tensor:
        return batch


@paper_dataset(NAME)
def load_food101_sources(
    root: Path | str,
    *,
    tokenizer: str = "",
    max_length: int = 40,
    vocab_size: int = 30000,
    image_size: int = 224,
    train_crop: Crop = "resize",
    texts: str = TEXTS,
    images: str = IMAGES,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """UPMC Food-101 train/val/test sources (layout: `LAYOUT`): ``visual`` image + ``text`` tokens.

    Args:
        root: dataset folder.
        tokenizer: a Hugging Face tokenizer folder or a vocabulary file (``""``: a vocabulary of the
            training titles).
        max_length: ``L`` of the token ids (the benchmark's 40).
        vocab_size: at most this many entries in the vocabulary built without ``tokenizer``.
        image_size / train_crop: image options (eval resize to ``S x S``; train crop + flip).
        texts / images: path templates relative to ``root`` (``{split}``: train, test).
        val_fraction / seed: the val split carved from train.
        on_missing: ``skip`` (warn and count) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` with ``visual`` ``[3, S, S]`` and ``text``
            ``[L]`` (int64 ids, ``tokens`` kind).
    """
    root = Path(root)
    train_dir = root / fill(images, split="train")
    if not train_dir.is_dir():
        raise layout_error(f"missing image folder {train_dir}", LAYOUT)
    classes = list(class_index(sorted(p.name for p in train_dir.iterdir() if p.is_dir())))
    if not classes:
        raise layout_error(f"no class folders in {train_dir}", LAYOUT)
    to_index = {c: i for i, c in enumerate(classes)}
    parts: dict[str, list[Clip]] = {}
    infos: dict[str, dict[str, Any]] = {}
    title: dict[str, str] = {}
    for split in ("train", "test"):
        path = root / fill(texts, split=split)
        clips = []
        for lineno, (image, raw, label) in enumerate(read_titles(path), start=2):
            if label not in to_index:
                raise layout_error(f"row {lineno} of {path}: label {label!r} is not a folder of {train_dir}", LAYOUT)
            cid = f"{label}/{image}"
            title[f"{split}:{cid}"] = clean_text(raw)
            clips.append(Clip(cid, to_index[label], {"visual": root / fill(images, split=split) / label / image}))
        parts[split], infos[split] = keep_present(NAME, split, clips, path, LAYOUT, on_missing)
    # tokenise every present title once (train before test), then each clip's text is its row
    order = [(s, c) for s in ("train", "test") for c in parts[s]]
    strings = [title[f"{s}:{c.id}"] for s, c in order]
    if tokenizer:
        tok = tokenize(strings, tokenizer, max_length)
    else:
        vocab = build_vocab([title[f"train:{c.id}"] for c in parts["train"]], max_size=vocab_size)
        tok = tokenize_with_vocab(strings, vocab, max_length, where="the vocabulary of the training titles")
    rows = {(s, c.id): i for i, (s, c) in enumerate(order)}
    for s in ("train", "test"):
        parts[s] = [Clip(c.id, c.label, {**c.paths, "text": rows[(s, c.id)]}) for c in parts[s]]
    parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
    infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders: dict[str, ModalityLoader] = {
        "visual": ImageFile("visual", LAYOUT, image_size, train_crop),
        "text": TokenRows(tok.spec("text"), tok.ids),
    }
    common = {
        "dataset": NAME,
        "root": str(root),
        "image_size": image_size,
        "max_length": max_length,
        "tokenizer": tokenizer or "vocabulary of the training titles",
        "vocab_size": tok.vocab_size,
        "pad_id": tok.pad_id,
    }
    return split_sources(NAME, parts, infos, len(classes), loaders, classes, common)


# BalanceBenchmark's global settings; its FOOD101 encoders are torchvision's ViT-B/16 (encoder_config ViT_B,
# if_pretrain false) and a BERT text encoder projected to 1024 (pretrained_encoder.text_encoder). The text
# default here trains a Transformer from scratch on the fallback vocabulary; for BERT set
# model.options.encoders.text: hf:<folder> and dataset_options.tokenizer: <folder>.
register_preset(
    NAME,
    num_classes=101,
    dataset_options={"image_size": 224, "max_length": 40},
    train=BALANCE_TRAIN,
    model={
        "name": "late-fusion",
        "dim": 1024,
        "fusion": "concat",
        "options": {"encoders": {"visual": "tv:vit_b_16", "text": "tokens"}},
    },
    source="GeWu-Lab/BalanceBenchmark 4c1482f configs/global_config.yaml, configs/encoder_config.yaml (ViT_B), "
    "configs/dataset_config.yaml (FOOD101), balancemm/encoders/pretrained_encoder.py (text_encoder)",
)
