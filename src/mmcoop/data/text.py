"""Texts -> padded token ids ``[N, L]`` (int64) for a ``tokens`` modality, offline.

Two tokenizers, chosen by what ``tokenizer`` points at:

- a **folder** saved by a Hugging Face tokenizer's ``save_pretrained`` (``tokenizer.json``
  / ``vocab.txt`` + ``tokenizer_config.json``): read with ``AutoTokenizer.from_pretrained(
  folder, local_files_only=True)`` (needs ``pip install 'mmcoop[text]'``; nothing is ever
  downloaded). Special tokens (``[CLS]``, ``[SEP]``) are added as the tokenizer does; the
  padding id is the tokenizer's ``pad_token_id``. Use it with the ``hf:`` encoder of the same
  model, whose ids these are.
- a **vocabulary file** (one token per line, line ``i`` = id ``i``; e.g. from
  `build_vocab` + `write_vocab`): lower-cased words and punctuation marks
  (``\\w+|[^\\w\\s]``) looked up in it, no package needed. It must contain a padding token
  (``[PAD]`` or ``<pad>``) and an unknown token (``[UNK]`` or ``<unk>``). For encoders
  trained from scratch (``tokens``).

Either way a text longer than ``max_length`` is cut, a shorter one padded at the end.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

from mmcoop.data.protocol import ModalitySpec
from mmcoop.errors import DataError
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.optional import import_optional

PAD_TOKENS = ("[PAD]", "<pad>")
UNK_TOKENS = ("[UNK]", "<unk>")
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class TokenizedTexts:
    """Token ids of ``N`` texts.

    Attributes:
        ids: int64 ``[N, L]``, padded with ``pad_id``.
        pad_id: the padding id (the attention mask is ``ids != pad_id``).
        vocab_size: number of ids of the tokenizer (every id lies in ``[0, vocab_size)``).
    """

    ids: Tensor
    pad_id: int
    vocab_size: int

    def spec(self, name: str) -> ModalitySpec:
        """The ``tokens`` `ModalitySpec` of these ids (shape ``(L,)``, this pad id and vocabulary)."""
        return ModalitySpec(name, "tokens", (int(self.ids.shape[1]),), pad_id=self.pad_id, vocab_size=self.vocab_size)


def words(text: str) -> list[str]:
    """The simple tokenizer's pieces of ``text``: lower-cased words and punctuation marks.

    Example:
        >>> words("Grilled cheese, Toasted!")
        ['grilled', 'cheese', ',', 'toasted', '!']
    """
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], max_size: int | None = None, min_count: int = 1) -> list[str]:
    """A vocabulary for the simple tokenizer: ``[PAD]``, ``[UNK]``, then words by falling count.

    Args:
        texts: the (training) texts.
        max_size: at most this many entries in all (``None``: no limit).
        min_count: words seen fewer times are left out (they become ``[UNK]``).

    Returns:
        Tokens in id order (ties broken alphabetically, so the result is deterministic).

    Example:
        >>> build_vocab(["a cat", "a dog"])
        ['[PAD]', '[UNK]', 'a', 'cat', 'dog']
    """
    counts = Counter(w for t in texts for w in words(t))
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = [PAD_TOKENS[0], UNK_TOKENS[0], *ranked]
    return vocab if max_size is None else vocab[: max(int(max_size), 2)]


def write_vocab(vocab: Sequence[str], path: str | os.PathLike) -> Path:
    """Write ``vocab`` one token per line (atomically); returns the path."""
    return atomic_write_text(path, "".join(f"{t}\n" for t in vocab))


def _special(vocab: dict[str, int], names: tuple[str, ...], what: str, path: str | os.PathLike) -> int:
    for n in names:
        if n in vocab:
            return vocab[n]
    raise DataError(f"vocabulary file {path} has no {what} token ({' or '.join(names)}); add one line for it")


def _vocab_file(texts: Sequence[str], path: Path, max_length: int) -> TokenizedTexts:
    return tokenize_with_vocab(texts, path.read_text(encoding="utf-8").splitlines(), max_length, where=path)


def tokenize_with_vocab(
    texts: Sequence[str], vocab: Sequence[str], max_length: int, where: str | os.PathLike = "the vocabulary"
) -> TokenizedTexts:
    """The simple tokenizer with an in-memory vocabulary (token ``i`` = id ``i``, e.g. `build_vocab`'s).

    Args:
        texts: ``N`` strings.
        vocab: tokens in id order, with a padding and an unknown token.
        max_length: ``L``.
        where: what to name in an error (the vocabulary file).

    Returns:
        `TokenizedTexts` ``[N, L]``.

    Example:
        >>> tokenize_with_vocab(["a dog"], build_vocab(["a cat"]), 3).ids.tolist()
        [[2, 1, 0]]
    """
    ids_of = {t: i for i, t in reversed(list(enumerate(vocab)))}  # the first of a repeated token wins
    pad, unk = _special(ids_of, PAD_TOKENS, "padding", where), _special(ids_of, UNK_TOKENS, "unknown", where)
    ids = torch.full((len(texts), max_length), pad, dtype=torch.long)
    for i, text in enumerate(texts):
        row = [ids_of.get(w, unk) for w in words(text)][:max_length]
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return TokenizedTexts(ids, pad, len(vocab))


def _hf_folder(texts: Sequence[str], folder: Path, max_length: int) -> TokenizedTexts:
    transformers = import_optional("transformers", "text", f"the tokenizer folder {folder}")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as e:
        raise DataError(
            f"{folder} is not a tokenizer folder transformers can read ({e}); give the folder written by "
            "tokenizer.save_pretrained(...) or a vocabulary file"
        ) from None
    if tok.pad_token_id is None:
        raise DataError(
            f"the tokenizer in {folder} has no padding token; set one (tokenizer.pad_token = ...) and save it again"
        )
    enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return TokenizedTexts(enc["input_ids"].long(), int(tok.pad_token_id), len(tok))


def tokenize(texts: Sequence[str], tokenizer: str | os.PathLike, max_length: int = 64) -> TokenizedTexts:
    """Token ids ``[N, max_length]`` of ``texts`` (see the module docstring for the two tokenizers).

    Args:
        texts: ``N`` strings.
        tokenizer: a Hugging Face tokenizer folder, or a vocabulary file.
        max_length: ``L``, the padded length (longer texts are cut).

    Returns:
        `TokenizedTexts` (ids, padding id, vocabulary size); ``.spec(name)`` gives the
            modality spec.

    Raises:
        DataError: ``tokenizer`` does not exist or cannot be read.
        ConfigError: a tokenizer folder given and ``transformers`` is not installed.

    Example:
        >>> import tempfile, pathlib
        >>> vocab = pathlib.Path(tempfile.mkdtemp()) / "vocab.txt"
        >>> _ = write_vocab(build_vocab(["a cat"]), vocab)
        >>> tokenize(["A cat!", "cat"], vocab, max_length=3).ids.tolist()
        [[2, 3, 1], [3, 0, 0]]
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise DataError(f"max_length must be a positive integer, got {max_length!r}")
    path = Path(tokenizer).expanduser()
    if path.is_dir():
        return _hf_folder(texts, path, max_length)
    if path.is_file():
        return _vocab_file(texts, path, max_length)
    raise DataError(
        f"tokenizer {str(tokenizer)!r} not found (looked for {path.resolve()}); give a folder saved by a Hugging Face "
        "tokenizer's save_pretrained, or a vocabulary file with one token per line"
    )
