"""Every source kind fetches what the in-memory equivalent holds; views, transforms, workers, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mmcoop.data import (
    ArraySource,
    DictDatasetSource,
    FileSource,
    ModalitySpec,
    MultimodalDataset,
    Source,
    TensorSource,
    make_loader,
)
from mmcoop.errors import DataError

N, C = 12, 3
SHAPES = {"vec": (5,), "seq": (3, 4), "img": (1, 4, 4)}


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    g = np.random.default_rng(0)
    out = {m: g.standard_normal((N, *s)).astype(np.float32) for m, s in SHAPES.items()}
    out["y"] = (np.arange(N) * 7 % C).astype(np.int64)
    return out


@pytest.fixture(scope="module")
def ref(arrays) -> MultimodalDataset:
    specs = [
        ModalitySpec("vec", "vector", (5,)),
        ModalitySpec("seq", "sequence", (3, 4)),
        ModalitySpec("img", "image", (1, 4, 4)),
    ]
    return MultimodalDataset({m: torch.from_numpy(arrays[m]) for m in SHAPES}, torch.from_numpy(arrays["y"]), C, specs)


class Items(Dataset):
    """Dict items from arrays; ``scale`` lets a second instance differ (eval vs train processing)."""

    def __init__(self, arrays, scale: float = 1.0, with_targets: bool = False) -> None:
        self.a, self.scale = arrays, scale
        if with_targets:
            self.targets = arrays["y"].tolist()

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict:
        return {
            "inputs": {m: torch.from_numpy(self.a[m][i]) * self.scale for m in SHAPES},
            "label": int(self.a["y"][i]),
        }


def _npy_source(arrays, tmp_path: Path, **kw) -> ArraySource:
    paths = {}
    for m in (*SHAPES, "y"):
        paths[m] = tmp_path / f"{m}.npy"
        np.save(paths[m], arrays[m])
    return ArraySource({m: paths[m] for m in SHAPES}, paths["y"], **kw)


def _file_source(arrays, tmp_path: Path, **kw) -> FileSource:
    records = []
    for i in range(N):
        rec = {}
        for m in SHAPES:
            rec[m] = str(tmp_path / f"s{i}_{m}.npy")
            np.save(rec[m], arrays[m][i])
        records.append(rec)
    decoders = {m: (lambda rec, m=m: np.load(rec[m])) for m in SHAPES}
    return FileSource(records, arrays["y"], decoders, **kw)


ROWS = torch.tensor([7, 0, 11, 7, 3])


def _assert_same(batch: dict, ref: MultimodalDataset, rows: torch.Tensor) -> None:
    for m in SHAPES:
        assert torch.equal(batch["inputs"][m], ref.inputs[m][rows]), m
    assert torch.equal(batch["label"], ref.labels[rows]) and batch["label"].dtype == torch.int64


def test_every_source_fetches_the_in_memory_tensors(arrays, ref, tmp_path: Path) -> None:
    npz = tmp_path / "all.npz"
    np.savez(npz, **{m: arrays[m] for m in SHAPES}, labels=arrays["y"])
    sources = {
        "tensor": ref.source,
        "npy": _npy_source(arrays, tmp_path),
        "npz": ArraySource({m: npz for m in SHAPES}, npz),
        "memory": ArraySource({m: arrays[m] for m in SHAPES}, arrays["y"]),
        "dict": DictDatasetSource(Items(arrays)),
        "dict-targets": DictDatasetSource(Items(arrays, with_targets=True)),
        "files": _file_source(arrays, tmp_path),
    }
    for name, src in sources.items():
        assert isinstance(src, Source), name
        assert src.specs == ref.specs and src.num_classes == C and len(src) == N, name
        assert torch.equal(src.labels(), ref.labels), name
        for train in (False, True):
            _assert_same(src.fetch(ROWS, train), ref, ROWS)
        view = MultimodalDataset.from_source(src)
        _assert_same(view.__getitems__([7, 0, 11, 7, 3]), ref, ROWS)


def test_kinds_override_and_validation(arrays) -> None:
    src = ArraySource({"img": arrays["img"]}, arrays["y"], kinds={"img": "spectrogram"})
    assert src.specs == [ModalitySpec("img", "spectrogram", (1, 4, 4))]
    frames = ArraySource({"f": np.zeros((N, 2, 1, 3, 3), np.float32)}, arrays["y"], num_classes=5)
    assert frames.specs[0].kind == "frames" and frames.num_classes == 5
    with pytest.raises(
        DataError, match="unknown kind 'audio'; valid kinds: vector, sequence, image, spectrogram, frames"
    ):
        ModalitySpec("a", "audio", (3,))  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"'frames' needs a shape of 4"):
        ModalitySpec("a", "frames", (3, 4, 4))
    with pytest.raises(DataError, match="no modality kind has 5 dimensions"):
        ArraySource({"x": np.zeros((N, 1, 1, 1, 1, 1))}, arrays["y"])


def test_memmap_really_maps_and_workers_remap(arrays, tmp_path: Path) -> None:
    src = _npy_source(arrays, tmp_path)
    a = src.array("img")
    assert isinstance(a, np.memmap) and Path(a.filename) == tmp_path / "img.npy"
    npz = tmp_path / "plain.npz"
    np.savez(npz, img=arrays["img"], labels=arrays["y"])
    z = ArraySource({"img": npz}, npz)
    m = z.array("img")
    assert isinstance(m, np.memmap) and Path(m.filename) == npz and m.offset > 0
    assert np.array_equal(np.asarray(m), arrays["img"])
    # pickling (DataLoader workers) carries paths, not data; the copy maps the file again
    big = np.arange(200 * 100, dtype=np.float32).reshape(200, 100)
    np.save(tmp_path / "big.npy", big)
    src = ArraySource({"big": tmp_path / "big.npy"}, np.zeros(200, np.int64), num_classes=2)
    blob = pickle.dumps(src)
    assert len(blob) < 4096 < big.nbytes
    back = pickle.loads(blob)
    assert isinstance(back.array("big"), np.memmap)
    assert torch.equal(back.fetch(torch.tensor([150, 3]), False)["inputs"]["big"], torch.from_numpy(big[[150, 3]]))
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, img=arrays["img"], labels=arrays["y"])
    with pytest.warns(UserWarning, match="compressed and cannot be memory-mapped"):
        c = ArraySource({"img": packed}, packed)
    assert not isinstance(c.array("img"), np.memmap) and np.array_equal(c.array("img"), arrays["img"])


def test_with_units_over_lazy_sources_fetch_the_right_rows(arrays, ref, tmp_path: Path) -> None:
    rows, keep = torch.tensor([3, 3, 10]), torch.tensor([[True, False, True], [False, True, True], [True, True, False]])
    for src in (_npy_source(arrays, tmp_path), DictDatasetSource(Items(arrays))):
        base = MultimodalDataset.from_source(src).view(torch.tensor([5, 1]))
        units = base.with_units(rows, keep)
        assert len(units) == 5 and units.num_samples == N
        b = units.__getitems__([4, 0, 2, 3])
        want = torch.tensor([10, 5, 3, 3])
        _assert_same(b, ref, want)
        assert torch.equal(b["index"], want)
        assert torch.equal(b["keep"], torch.cat([torch.ones(2, 3, dtype=torch.bool), keep])[[4, 0, 2, 3]])


def test_view_api_over_lazy_and_tensor_sources(arrays, ref, tmp_path: Path) -> None:
    lazy = MultimodalDataset(_npy_source(arrays, tmp_path), rows=torch.tensor([2, 4]))
    assert len(lazy) == 2 and lazy.num_modalities == 3 and lazy.modalities == ["vec", "seq", "img"]
    assert lazy.to("cpu") is lazy and not lazy.in_memory and lazy.extras == {}
    assert torch.equal(lazy.labels, ref.labels)
    with pytest.raises(AttributeError, match="not held in memory"):
        lazy.inputs  # noqa: B018
    moved = ref.to("cpu")
    assert moved is not ref and moved.in_memory and torch.equal(moved.inputs["vec"], ref.inputs["vec"])
    with pytest.raises(TypeError, match="come from the source"):
        MultimodalDataset(ref.source, ref.labels)
    with pytest.raises(DataError, match=r"keep-masks must be \[U, M\] = \[2, 3\]"):
        ref.view(torch.tensor([0, 1]), torch.ones(2, 2, dtype=torch.bool))
    assert ref[3]["label"] == ref.labels[3] and ref[3]["inputs"]["img"].shape == (1, 4, 4)


def _double(inputs: dict) -> dict:
    return {k: 2 * v for k, v in inputs.items()}


def test_train_and_eval_transforms(arrays, ref, tmp_path: Path) -> None:
    specs = ref.specs
    src = TensorSource(ref.inputs, ref.labels, C, specs, transforms={"train": _double})
    view = MultimodalDataset.from_source(src)
    assert not view.train
    ev = view.__getitems__([1, 2])["inputs"]["vec"]
    assert torch.equal(ev, ref.inputs["vec"][[1, 2]])  # eval: as stored
    tr = view.train_mode(True)
    assert tr.train and tr.view(torch.tensor([1, 2])).train and tr.with_units(torch.tensor([0]), torch.ones(1, 3)).train
    assert torch.equal(tr.__getitems__([1, 2])["inputs"]["vec"], 2 * ev)  # train: augmented
    assert torch.equal(tr.train_mode(False).__getitems__([1, 2])["inputs"]["vec"], ev)
    # the same transforms on an ArraySource; the eval one applies in eval mode only
    arr = _npy_source(arrays, tmp_path, transforms={"eval": _double})
    assert torch.equal(arr.fetch(ROWS, False)["inputs"]["img"], 2 * ref.inputs["img"][ROWS])
    assert torch.equal(arr.fetch(ROWS, True)["inputs"]["img"], ref.inputs["img"][ROWS])
    # a dict dataset with a separate eval dataset (e.g. without augmentation)
    d = DictDatasetSource(Items(arrays, scale=3.0), eval_dataset=Items(arrays))
    assert torch.equal(d.fetch(ROWS, True)["inputs"]["seq"], 3 * ref.inputs["seq"][ROWS])
    assert torch.equal(d.fetch(ROWS, False)["inputs"]["seq"], ref.inputs["seq"][ROWS])


def test_file_decoder_sees_the_mode(arrays, tmp_path: Path) -> None:
    recs = list(range(N))
    src = FileSource(
        recs,
        arrays["y"],
        {
            "v": lambda r, train: np.full(2, 10.0 * r + float(train), np.float32),
            "w": lambda r: np.full(3, float(r), np.float32),
        },
    )
    assert src.specs == [ModalitySpec("v", "vector", (2,)), ModalitySpec("w", "vector", (3,))]
    assert src.fetch(torch.tensor([4]), True)["inputs"]["v"].tolist() == [[41.0, 41.0]]
    assert src.fetch(torch.tensor([4]), False)["inputs"]["v"].tolist() == [[40.0, 40.0]]


def test_workers_give_the_same_batches(arrays, tmp_path: Path) -> None:
    for src in (_npy_source(arrays, tmp_path), DictDatasetSource(Items(arrays))):
        data = MultimodalDataset.from_source(src).with_units(torch.tensor([1, 2]), torch.ones(2, 3))
        runs = [list(make_loader(data, 4, shuffle=True, seed=3, epoch=1, num_workers=w)) for w in (0, 2)]
        assert len(runs[0]) == len(runs[1]) == 4  # 14 rows: 4+4+4+2
        for a, b in zip(*runs):
            assert torch.equal(a["index"], b["index"]) and torch.equal(a["keep"], b["keep"])
            for m in SHAPES:
                assert torch.equal(a["inputs"][m], b["inputs"][m])


def _noisy(inputs: dict) -> dict:
    return {k: v + torch.randn_like(v) for k, v in inputs.items()}


def test_random_train_transforms_in_workers_are_seeded(ref) -> None:
    src = TensorSource(ref.inputs, ref.labels, C, ref.specs, transforms={"train": _noisy})
    data = MultimodalDataset.from_source(src).train_mode(True)
    a, b = ([x["inputs"]["vec"] for x in make_loader(data, 6, shuffle=True, seed=1, num_workers=2)] for _ in range(2))
    c = [x["inputs"]["vec"] for x in make_loader(data, 6, shuffle=True, seed=1, epoch=1, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(torch.cat(a).sort(0).values, torch.cat(c).sort(0).values)


class Bad(Items):
    def __init__(self, arrays, mode: str) -> None:
        super().__init__(arrays)
        self.mode = mode

    def __getitem__(self, i: int):
        item = super().__getitem__(i)
        if i != 5:
            return item
        if self.mode == "missing":
            del item["inputs"]["seq"]
        elif self.mode == "range":
            item["label"] = 9
        elif self.mode == "shape":
            item["inputs"]["img"] = torch.zeros(1, 4, 5)
        elif self.mode == "layout":
            return (item["inputs"], item["label"])
        elif self.mode == "raise":
            raise OSError("disk on fire")
        elif self.mode == "text":
            item["label"] = "cat"
        return item


@pytest.mark.parametrize(
    "mode, pattern",
    [
        ("missing", r"item 5 lacks modalities \['seq'\] .*every sample needs inputs for vec, seq, img"),
        ("range", r"item 5 has label 9 outside \[0, 3\); fix the label or num_classes"),
        ("shape", r"item 5: modality 'img' has shape \(1, 4, 5\) but the source's spec says \(1, 4, 4\)"),
        ("layout", r"item 5 is tuple; items must be \{\"inputs\""),
        ("raise", r"item 5 could not be read \(OSError: disk on fire\); fix the dataset"),
        ("text", r"item 5 has label 'cat'; labels must be int class indices"),
    ],
)
def test_bad_items_give_one_line_errors(arrays, mode: str, pattern: str) -> None:
    ds = Bad(arrays, mode)
    ds.targets = arrays["y"].tolist()  # labels known up front: the bad item is met at fetch time
    src = DictDatasetSource(ds, num_classes=C)
    src.fetch(torch.tensor([0, 4]), False)
    with pytest.raises(DataError, match=pattern) as err:
        src.fetch(torch.tensor([4, 5]), False)
    assert "\n" not in str(err.value) and "dataset 'Bad'" in str(err.value)


def test_bad_sources_give_one_line_errors(arrays, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"label out of range: labels span \[0, 2\] but num_classes=2"):
        DictDatasetSource(Items(arrays), num_classes=2)
    with pytest.raises(DataError, match="item 5 has label 2 but the labels given says 4"):
        DictDatasetSource(Items(arrays), labels=np.where(np.arange(N) == 5, 4, arrays["y"]), num_classes=5).fetch(
            torch.tensor([5]), False
        )
    with pytest.raises(DataError, match=r"modality 'vec' .* has shape \(11, 5\) but there are 12 labels"):
        ArraySource({"vec": arrays["vec"][:11]}, arrays["y"])
    np.savez(tmp_path / "k.npz", vec=arrays["vec"])
    with pytest.raises(DataError, match=r"k.npz has no array 'labels'; it holds \['vec'\]"):
        ArraySource({"vec": tmp_path / "k.npz"}, tmp_path / "k.npz")
    with pytest.raises(DataError, match=r"array file .*nope.npy does not exist"):
        ArraySource({"vec": tmp_path / "nope.npy"}, arrays["y"])
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match=r"cannot read array file .*junk.npy"):
        ArraySource({"vec": tmp_path / "junk.npy"}, arrays["y"])
    src = FileSource(["a.wav", "b.wav"], [0, 1], {"audio": lambda p: np.zeros(3) if p == "a.wav" else open(p)})
    with pytest.raises(DataError, match=r"decoding 'audio' of files record 1 \('b.wav'\) failed \(FileNotFoundError"):
        src.fetch(torch.tensor([1]), False)


class Short(Items):
    def __len__(self) -> int:
        return N - 1


def test_dict_source_options(arrays, ref) -> None:
    from mmcoop.errors import ConfigError

    sub = DictDatasetSource(Items(arrays), modalities=["img", "vec"], kinds={"img": "spectrogram"})
    assert sub.specs == [ModalitySpec("img", "spectrogram", (1, 4, 4)), ModalitySpec("vec", "vector", (5,))]
    got = sub.fetch(ROWS, False)["inputs"]
    assert list(got) == ["img", "vec"] and torch.equal(got["img"], ref.inputs["img"][ROWS])
    with pytest.raises(DataError, match="eval_dataset of 'Items' has 11 items but the dataset has 12"):
        DictDatasetSource(Items(arrays), eval_dataset=Short(arrays))
    with pytest.raises(ConfigError, match=r"unknown transform key\(s\) \['test'\]"):
        DictDatasetSource(Items(arrays), transforms={"test": _double})
    with pytest.raises(DataError, match=r"kinds given for unknown modalities \['aud'\]"):
        DictDatasetSource(Items(arrays), kinds={"aud": "spectrogram"})
