"""Tiny offline pretrained backbones and data for the text / pretrained-encoder tests.

Importable as ``_text_fixtures`` (``tests/`` is on ``sys.path``); the data functions are
``data.target``s (``"_text_fixtures:image_text"``).

- :func:`save_tiny_bert`: a BERT from ``BertConfig`` (random weights, hidden 32, 2 layers)
  and its WordPiece tokenizer built from :data:`VOCAB`, saved with ``save_pretrained``;
- :func:`save_tiny_timm`: timm's ``test_resnet`` (373k parameters) saved as a ``.pth``;
- :func:`image_text`: image ``[3, 16, 16]`` + caption ids, captions tokenized with
  :func:`mmcoop.data.text.tokenize` (a tokenizer folder, or a vocabulary file);
- :func:`three_sequences`: MOSEI-style vision / audio / text feature sequences ``[T, D]``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from mmcoop.data import DatasetSplits, ModalitySpec, MultimodalDataset, TensorSource
from mmcoop.data.text import build_vocab, tokenize, write_vocab

CLASS_WORDS = [["apple", "red"], ["pear", "green"], ["plum", "blue"]]
FILLER = ["the", "a", "fresh", "on", "plate", "with", "of"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *FILLER, *[w for ws in CLASS_WORDS for w in ws]]
NUM_CLASSES = 3


def save_tiny_bert(folder: Path) -> Path:
    """A random tiny BERT and its tokenizer in ``folder`` (as ``save_pretrained`` writes them)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("".join(f"{w}\n" for w in VOCAB))
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    BertModel(cfg).save_pretrained(str(folder))
    return folder


def save_tiny_timm(path: Path, name: str = "test_resnet") -> Path:
    """A random timm ``name`` (with its classifier, as a hub checkpoint has one) saved to ``path``."""
    import timm

    torch.manual_seed(0)
    torch.save(timm.create_model(name, pretrained=False, num_classes=7).state_dict(), path)
    return path


def _captions(labels: torch.Tensor, g: torch.Generator, informative: float) -> list[str]:
    out = []
    for y in labels.tolist():
        words = [FILLER[int(i)] for i in torch.randint(0, len(FILLER), (4,), generator=g)]
        if float(torch.rand((), generator=g)) < informative:
            words.insert(int(torch.randint(0, 4, (), generator=g)), CLASS_WORDS[y][0])
        out.append(" ".join(words))
    return out


def image_text(
    seed: int = 0,
    tokenizer: str | None = None,
    sizes: tuple[int, int, int] = (48, 24, 24),
    max_length: int = 10,
) -> DatasetSplits:
    """Image ``[3, 16, 16]`` (class prototype + noise) + caption ``tokens`` ``[max_length]``.

    Args:
        seed: data seed.
        tokenizer: a tokenizer folder or vocabulary file; ``None``: a vocabulary built from
            the training captions (the offline tokenizer, no transformers).
        sizes: train / val / test sizes.
        max_length: padded caption length.
    """
    centers = torch.randn(NUM_CLASSES, 3 * 16 * 16, generator=torch.Generator().manual_seed(1234))
    raw = []
    for i, n in enumerate(sizes):
        g = torch.Generator().manual_seed(seed * 10 + i)
        labels = torch.arange(n) % NUM_CLASSES
        image = (0.6 * centers[labels] + torch.randn(n, 3 * 16 * 16, generator=g)).view(n, 3, 16, 16)
        raw.append((labels, image, _captions(labels, g, informative=0.7)))
    with tempfile.TemporaryDirectory() as tmp:
        if tokenizer is None:
            tokenizer = str(write_vocab(build_vocab(raw[0][2]), Path(tmp) / "vocab.txt"))
        toks = [tokenize(captions, tokenizer, max_length=max_length) for _, _, captions in raw]
    parts = []
    for split, (labels, image, _), tok in zip(("train", "val", "test"), raw, toks):
        specs = [ModalitySpec("image", "image", (3, 16, 16)), tok.spec("text")]
        ids = [f"{split}-{k}" for k in range(len(labels))]
        src = TensorSource({"image": image, "text": tok.ids}, labels, NUM_CLASSES, specs, ids=ids)
        parts.append(MultimodalDataset.from_source(src))
    return DatasetSplits("image-text", *parts)


def three_sequences(seed: int = 0, sizes: tuple[int, int, int] = (60, 30, 30), steps: int = 6) -> DatasetSplits:
    """MOSEI-style feature sequences: vision ``[T, 5]``, audio ``[T, 4]``, text ``[T, 8]``; the
    class signal is strongest in text, weaker in vision, weakest in audio."""
    dims = {"vision": 5, "audio": 4, "text": 8}
    scale = {"vision": 0.8, "audio": 0.3, "text": 1.5}
    protos = torch.Generator().manual_seed(99)
    centers = {m: torch.randn(NUM_CLASSES, d, generator=protos) for m, d in dims.items()}
    specs = [ModalitySpec(m, "sequence", (steps, d)) for m, d in dims.items()]
    parts = []
    for i, n in enumerate(sizes):
        g = torch.Generator().manual_seed(seed * 10 + i)
        labels = torch.arange(n) % NUM_CLASSES
        inputs = {
            m: scale[m] * centers[m][labels].unsqueeze(1) + torch.randn(n, steps, d, generator=g)
            for m, d in dims.items()
        }
        parts.append(MultimodalDataset(inputs, labels, NUM_CLASSES, specs))
    return DatasetSplits("three-sequences", *parts)
