"""The ``hf:``, ``timm:`` and ``tv:`` adapters on tiny models saved to temp folders (offline), and a run
with ``hf:`` + ``timm:`` encoders that trains, resumes exactly and is valued."""

from __future__ import annotations

import builtins
import json

import pytest
import torch

from _runs import strip_times
from _text_fixtures import VOCAB, save_tiny_bert, save_tiny_timm
from mmcoop.data import ModalitySpec
from mmcoop.data.text import tokenize
from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, load_run, read_metrics, resume_experiment, run_experiment
from mmcoop.models.builder import build_encoder
from mmcoop.valuation import valuate_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

IMG = ModalitySpec("image", "image", (3, 16, 16))


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def timm_ckpt(tmp_path_factory):
    return save_tiny_timm(tmp_path_factory.mktemp("timm") / "test_resnet.pth")


def test_hf_tokenizer_folder_and_model_load_offline(bert) -> None:
    from transformers import BertModel

    tok = tokenize(["red apple", "the plum on a plate"], bert, max_length=8)
    cls_, sep = VOCAB.index("[CLS]"), VOCAB.index("[SEP]")
    assert tok.ids[0].tolist() == [cls_, VOCAB.index("red"), VOCAB.index("apple"), sep, 0, 0, 0, 0]
    assert (tok.pad_id, tok.vocab_size) == (0, len(VOCAB))
    spec = tok.spec("text")
    enc = build_encoder(f"hf:{bert}", spec, 16, {"pooling": "mean"}).eval()
    saved = BertModel.from_pretrained(str(bert)).state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in enc.backbone.state_dict().items())  # the saved weights
    with torch.no_grad():
        out = enc.backbone(input_ids=tok.ids, attention_mask=(tok.ids != 0).long()).last_hidden_state
        mask = (tok.ids != 0).unsqueeze(-1).float()
        torch.testing.assert_close(enc(tok.ids), enc.proj((out * mask).sum(1) / mask.sum(1)))
        cls_enc = build_encoder(f"hf:{bert}", spec, 32, {"pooling": "cls"}).eval()  # 32 = hidden: no projection
        torch.testing.assert_close(cls_enc(tok.ids), out[:, 0])


def test_hf_messages_name_the_folder_and_the_limits(bert, tmp_path) -> None:
    spec = ModalitySpec("text", "tokens", (8,), vocab_size=len(VOCAB))
    with pytest.raises(ConfigError, match=f"folder not found \\(looked for {tmp_path / 'nope'}\\)"):
        build_encoder(f"hf:{tmp_path / 'nope'}", spec, 8, {})
    with pytest.raises(ConfigError, match="exceed the model's 32 positions"):
        build_encoder(f"hf:{bert}", ModalitySpec("text", "tokens", (40,)), 8, {})
    with pytest.raises(ConfigError, match="encodes a tokens modality"):
        build_encoder(f"hf:{bert}", ModalitySpec("v", "vector", (8,)), 8, {})


def test_a_missing_package_is_named_with_its_extra(bert, monkeypatch) -> None:
    real = builtins.__import__

    def no_timm(name, *a, **kw):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(ConfigError, match=r"needs the Python package 'timm'.*pip install 'mmcoop\[timm\]'"):
        build_encoder("timm:test_resnet", IMG, 8, {})


def test_timm_checkpoint_round_trip(timm_ckpt, tmp_path) -> None:
    import timm

    enc = build_encoder("timm:test_resnet", IMG, 8, {"checkpoint": str(timm_ckpt), "freeze": True})
    saved = torch.load(timm_ckpt, weights_only=True)
    got = enc.backbone.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in got.items())  # every backbone tensor from the file
    assert "fc.weight" in saved and not any(k.startswith("fc.") for k in got)  # classifier dropped
    assert not any(p.requires_grad for p in enc.backbone.parameters()) and enc.proj.weight.requires_grad
    ref = timm.create_model("test_resnet", num_classes=0)
    ref.load_state_dict(got)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(x), enc.proj(ref.eval()(x)))
    gray = build_encoder("timm:test_resnet", ModalitySpec("s", "spectrogram", (1, 16, 16)), 8, {})
    assert gray(torch.randn(2, 1, 16, 16)).shape == (2, 8)
    with pytest.raises(ConfigError, match=f"checkpoint: file not found \\(looked for {tmp_path / 'x.pth'}\\)"):
        build_encoder("timm:test_resnet", IMG, 8, {"checkpoint": str(tmp_path / "x.pth")})


def test_torchvision_weights_from_a_local_pth(tmp_path) -> None:
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=5)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "m.pth")
    spec = ModalitySpec("frames", "frames", (2, 3, 32, 32))
    enc = build_encoder("tv:mobilenet_v3_small", spec, 8, {"weights": str(tmp_path / "m.pth")}).eval()
    assert torch.equal(enc.backbone.features[0][0].weight, net.features[0][0].weight)
    x = torch.randn(2, 2, 3, 32, 32)
    net.classifier[-1] = torch.nn.Identity()
    with torch.no_grad():
        per_frame = net.eval()(x.flatten(0, 1)).unflatten(0, (2, 2)).mean(1)
        torch.testing.assert_close(enc(x), enc.proj(per_frame))
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="do not fit the model"):
        build_encoder("tv:mobilenet_v3_small", spec, 8, {"weights": str(tmp_path / "bad.pth")})
    with pytest.raises(ConfigError, match="weights: file not found"):
        build_encoder("tv:mobilenet_v3_small", spec, 8, {"weights": str(tmp_path / "none.pth")})
    with pytest.raises(ConfigError, match="torchvision has no model 'nonet'"):
        build_encoder("tv:nonet", spec, 8, {})


def _cfg(tmp_path, bert, ckpt, name: str, epochs: int) -> RunConfig:
    return RunConfig.from_dict(
        {
            "name": name,
            "out_dir": str(tmp_path),
            "data": {"target": "_text_fixtures:image_text", "options": {"tokenizer": str(bert)}},
            "method": "sample-level",
            "method_options": {"warmup": 1},
            "model": {
                "dim": 16,
                "options": {
                    "encoders": {"image": "timm:test_resnet", "text": f"hf:{bert}"},
                    "encoder_options": {
                        "image": {"checkpoint": str(ckpt), "lr_mult": 0.5},
                        "text": {"pooling": "mean", "freeze": True},
                    },
                },
            },
            "train": {"epochs": epochs, "batch_size": 16, "progress": False, "device": "cpu"},
        }
    )


def test_hf_and_timm_run_trains_resumes_exactly_and_values(tmp_path, bert, timm_ckpt) -> None:
    full = run_experiment(_cfg(tmp_path, bert, timm_ckpt, "full", 3))
    part = run_experiment(_cfg(tmp_path, bert, timm_ckpt, "part", 2))
    resumed = resume_experiment(part.run_dir, {"train": {"epochs": 3}})
    assert strip_times(read_metrics(resumed.run_dir)) == strip_times(read_metrics(full.run_dir))
    a, b = (json.loads((r.run_dir / "results.json").read_text()) for r in (full, resumed))
    a.pop("seconds_per_epoch"), b.pop("seconds_per_epoch")
    assert a == b
    cfg, model, splits = load_run(full.run_dir)
    assert cfg.train.lr_groups == {"encoders.image": 0.5}
    # the frozen BERT ends as it was loaded; the timm backbone trained
    from transformers import BertModel

    saved = BertModel.from_pretrained(str(bert)).state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in model.encoders["text"].backbone.state_dict().items())
    start = torch.load(timm_ckpt, weights_only=True)
    assert not torch.equal(model.encoders["image"].backbone.state_dict()["conv1.0.weight"], start["conv1.0.weight"])
    table = valuate_dataset(model, splits.test, batch_size=8, split="test")
    assert table.sample_id[0] == "test-0" and table.num_modalities == 2
    torch.testing.assert_close(table.phi.sum(1), table.values[:, -1] - table.values[:, 0])
