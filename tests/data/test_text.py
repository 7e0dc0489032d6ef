"""The offline tokenizers of :mod:`mmcoop.data.text` (the vocabulary-file one; the Hugging Face
folder one is exercised with a saved tiny tokenizer in ``tests/models/test_hf_adapter.py``)."""

from __future__ import annotations

import pytest
import torch

from mmcoop.data.text import build_vocab, tokenize, words, write_vocab
from mmcoop.errors import DataError


def test_vocab_file_tokenizer_pads_cuts_and_maps_unknown(tmp_path) -> None:
    vocab = build_vocab(["the cat sat", "the dog"], min_count=1)
    assert vocab == ["[PAD]", "[UNK]", "the", "cat", "dog", "sat"]
    path = write_vocab(vocab, tmp_path / "vocab.txt")
    out = tokenize(["The cat, the DOG", "sat", "zebra the cat sat dog"], path, max_length=4)
    # hand-derived: the=2 cat=3 dog=4 sat=5, ',' and 'zebra' unknown (1), padding 0
    assert out.ids.tolist() == [[2, 3, 1, 2], [5, 0, 0, 0], [1, 2, 3, 5]]
    assert out.ids.dtype == torch.int64 and (out.pad_id, out.vocab_size) == (0, 6)
    spec = out.spec("text")
    assert (spec.kind, spec.shape, spec.pad_id, spec.vocab_size) == ("tokens", (4,), 0, 6)


def test_build_vocab_limits() -> None:
    assert build_vocab(["a a b c"], max_size=3) == ["[PAD]", "[UNK]", "a"]
    assert build_vocab(["a a b"], min_count=2) == ["[PAD]", "[UNK]", "a"]
    assert words("Fish & Chips.") == ["fish", "&", "chips", "."]


def test_missing_tokenizer_and_missing_specials_are_named(tmp_path) -> None:
    with pytest.raises(DataError, match="not found .*nope"):
        tokenize(["x"], tmp_path / "nope", 4)
    (tmp_path / "v.txt").write_text("[PAD]\nword\n")
    with pytest.raises(DataError, match=r"v.txt has no unknown token"):
        tokenize(["x"], tmp_path / "v.txt", 4)
    with pytest.raises(DataError, match="max_length"):
        tokenize(["x"], tmp_path / "v.txt", 0)
