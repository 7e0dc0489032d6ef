"""food101: UPMC Food-101 in BalanceBenchmark's layout (images per class folder, titles csv), real MNIST frames."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from _readers import train_and_value
from av_fixtures import Built, Content, build_food101, reference_eval_frames

from mmcoop.data.text import build_vocab, words
from mmcoop.datasets.food101 import clean_text, load_food101_sources
from mmcoop.errors import DataError
from mmcoop.experiment.presets import preset_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def food(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_food101(tmp_path_factory.mktemp("food101"), Content(data_root))


def test_splits_image_and_the_fallback_vocabulary(food: Built) -> None:
    with pytest.warns(UserWarning, match=r"1 of 4 clips .* absent"):
        src = load_food101_sources(food.root, image_size=12, max_length=10, val_fraction=1 / 3)
    assert src["test"].ids == [cid for cid, _ in food.clips["test"]]
    assert src["test"].labels().tolist() == [0, 1, 2]  # sorted class folders
    assert sorted(src["train"].ids + src["val"].ids) == sorted(cid for cid, _ in food.clips["train"])
    vis, text = src["test"].specs
    assert (vis.name, vis.kind, vis.shape) == ("visual", "image", (3, 12, 12))
    assert (text.name, text.kind, text.shape, text.pad_id) == ("text", "tokens", (10,), 0)
    out = src["test"].fetch(torch.tensor([2]), train=False)
    cid = src["test"].ids[2]
    want_img = reference_eval_frames([food.root / "images" / "test" / cid], 12)[0]
    assert torch.allclose(out["inputs"]["visual"][0], want_img, atol=1e-6)
    # by hand: the vocabulary of the cleaned training titles, then word ids padded with 0 to 10
    train_titles = [clean_text(food.extra["titles"][c]) for c, _ in food.clips["train"]]
    vocab = build_vocab(train_titles)
    clean = clean_text(food.extra["titles"][cid])
    assert clean == "Best tacos recipe number 0, easy! "
    ids = [vocab.index(w) if w in vocab else 1 for w in words(clean)][:10]
    assert out["inputs"]["text"][0].tolist() == ids + [0] * (10 - len(ids))
    assert out["inputs"]["text"].dtype == torch.int64 and text.vocab_size == len(vocab)


def test_a_hugging_face_tokenizer_folder(food: Built, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "best", "tacos", "recipe", "easy", ","]))
    folder = tmp_path / "bert"
    BertTokenizer(str(vocab)).save_pretrained(str(folder))
    with pytest.warns(UserWarning):
        src = load_food101_sources(food.root, tokenizer=str(folder), image_size=12)
    cid = src["test"].ids[2]
    ref = AutoTokenizer.from_pretrained(str(folder))(
        clean_text(food.extra["titles"][cid]), padding="max_length", max_length=40, truncation=True
    )["input_ids"]
    assert src["test"].fetch(torch.tensor([2]), train=False)["inputs"]["text"][0].tolist() == ref
    assert ref[:3] == [2, 5, 6]  # [CLS] best tacos


def test_a_header_less_csv_and_bad_rows(food: Built, tmp_path: Path) -> None:
    root = tmp_path / "f"
    shutil.copytree(food.root, root)
    path = root / "texts" / "test_titles.csv"
    rows = list(csv.reader(path.open()))[1:]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)  # the UPMC files as distributed: no header
    with pytest.warns(UserWarning):
        assert load_food101_sources(root, image_size=12)["test"].ids == [cid for cid, _ in food.clips["test"]]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([["Image_path", "text", "label"], ["x.jpg", "pizza!", "pizza"]])
    with pytest.raises(DataError, match=r"row 2 of .*test_titles.csv: label 'pizza' is not a folder"):
        load_food101_sources(root)
    path.unlink()
    with pytest.raises(DataError, match=r"missing titles file .*test_titles.csv\. Expected layout"):
        load_food101_sources(root)


def test_trains_one_epoch_and_values_image_and_text_by_sample_id(food: Built, tmp_path: Path) -> None:
    sets = [
        "dataset_options.root=" + str(food.root),
        "dataset_options.image_size=16",
        "dataset_options.val_fraction=0.34",
    ]
    table = train_and_value(tmp_path, "food101", sets + ["dataset_options.max_length=12"])
    assert table.modalities == ["visual", "text"]
    assert table.sample_id == [cid for cid, _ in food.clips["test"]]


def test_the_preset_is_balancebenchmarks() -> None:
    want = preset_config("food101")
    assert want["train"]["optimizer"] == "adamw" and want["dataset_options"]["max_length"] == 40
    assert want["model"]["options"]["encoders"] == {"visual": "tv:vit_b_16", "text": "tokens"}
