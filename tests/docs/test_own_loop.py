"""The README's "In your own training loop" example runs verbatim and builds mmcoop train's plans."""

from __future__ import annotations

import copy
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import torch

from mmcoop.data import DatasetSplits
from mmcoop.data.base import MultimodalDataset
from mmcoop.data.dict_source import DictDatasetSource
from mmcoop.methods import build_method
from mmcoop.train import TrainConfig, Trainer
from mmcoop.train.callbacks import Callback

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def own_loop_code() -> str:
    blocks = dict(re.findall(r"<!-- readme-example: (\S+) -->\n```\w*\n(.*?)```", README.read_text(), flags=re.S))
    return blocks["own-loop.py"]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[dict[str, Any], str]:
    """Run the README block verbatim (as a script) once; its globals and printed output."""
    code = own_loop_code()
    assert len(code.strip().splitlines()) <= 40  # the promise of the section: a loop of at most 40 lines
    path = tmp_path_factory.mktemp("own_loop") / "own_loop.py"
    path.write_text(code)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ns = runpy.run_path(str(path), run_name="__main__")
    return ns, out.getvalue()


def test_runs_verbatim_and_resamples(example) -> None:
    ns, out = example
    lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1", "epoch 2", "epoch 3"]  # warm-up: epoch 0
    plan = ns["resampler"].last_plan
    assert plan is not None and len(plan) > 0
    assert plan.summary()["units_video"] > plan.summary()["units_audio"]  # video is the weaker modality


class Recorder(Callback):
    """Weights at the start of each epoch and the plan of each valuation (mmcoop train's events)."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.plans: dict[int, Any] = {}

    def on_epoch_start(self, trainer, epoch):
        self.states[epoch] = copy.deepcopy(trainer.model.state_dict())

    def after_valuation(self, trainer, table, plan):
        self.plans[trainer.epoch] = plan


def test_same_plans_as_mmcoop_train(example) -> None:
    ns, _ = example
    readme_resampler = ns["resampler"]
    # mmcoop train's engine and method on the README's data, model architecture and options
    data = MultimodalDataset.from_source(DictDatasetSource(ns["train"]))
    method = build_method("sample-level", {"warmup": readme_resampler.warmup})
    rec = Recorder()
    config = TrainConfig(epochs=4, batch_size=32, lr=1e-2, progress=False, device="cpu")
    torch.manual_seed(1)
    model = copy.deepcopy(ns["model"])
    for p in model.parameters():  # a fresh start, not the README's trained weights
        torch.nn.init.normal_(p, std=0.3)
    Trainer(model, method, DatasetSplits("own", data, data, data), config, seed=0, callbacks=[rec]).fit()
    assert sorted(rec.plans) == [1, 2, 3]
    # the README's resampler (same object type and options), replayed on mmcoop train's weights
    replay = copy.deepcopy(readme_resampler)
    replay.last_plan, replay.plan_epoch = None, -1
    net = copy.deepcopy(ns["model"])
    sizes = []
    for epoch in range(4):
        net.load_state_dict(rec.states[epoch])
        plan = replay.step(epoch, net, ns["train"])
        if epoch < readme_resampler.warmup:
            assert plan is None
            continue
        assert torch.equal(plan.rows, rec.plans[epoch].rows) and torch.equal(plan.keep, rec.plans[epoch].keep)
        sizes.append(len(plan))
    assert min(sizes) > 0 and len(set(sizes)) > 1  # non-trivial plans that change as training goes on


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "own-loop.md"


def test_guide_weighted_example_runs_through_warmup(tmp_path, monkeypatch, capsys) -> None:
    """The guide's weighted loop, verbatim: warm-up batches carry zero copies (today: KeyError 'copies'),
    the total loss steps up when the units start while the fused CE logged beside it does not, and a
    plain Dataset's ids and degraded keys reach valuate_dataset's table; valuate_inputs takes string ids."""
    blocks = dict(re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own_loop_weighted.py").write_text(blocks["own_loop_weighted.py"])
    ns = runpy.run_path(str(tmp_path / "own_loop_weighted.py"), run_name="__main__")
    out = capsys.readouterr().out
    epochs = re.findall(r"epoch (\d): loss ([\d.]+) fused CE ([\d.]+) units (\d+)", out)
    assert [e[0] for e in epochs] == ["0", "1", "2"]
    (_, loss0, ce0, units0), (_, loss1, ce1, units1) = epochs[0], epochs[1]
    assert units0 == "0" and loss0 == ce0  # warm-up: no units, the total is the fused CE
    assert int(units1) > 0 and float(loss1) > float(ce1)  # re-sampled: the units' terms are in the total
    table = ns["table"]
    assert table.sample_id[:3] == ["clip_000", "clip_001", "clip_002"]
    assert table.degraded_modality[:4] == ["audio", "video", "audio", "video"]
    assert ns["probe"].sample_id == ["a", "b", "c", "d"]


def test_callback_example_handles_a_missing_plan(capsys) -> None:
    """The trainer-callback example of ``mmcoop.train.callbacks`` (its class, as written) takes plan=None."""
    import mmcoop.train.callbacks as events
    from _helpers import tiny_data, tiny_model
    from mmcoop.valuation import valuate_dataset

    lines = [ln.strip()[4:] for ln in (events.__doc__ or "").splitlines() if ln.strip()[:4] in (">>> ", "... ")]
    ns: dict[str, Any] = {"Callback": Callback}
    exec("\n".join(ln for ln in lines if not ln.startswith("Trainer(")), ns)  # noqa: S102 - the documented class
    data = tiny_data(6)
    table = valuate_dataset(tiny_model(data), data)

    class AtEpoch:
        epoch = 3

    ns["PrintContribution"]().after_valuation(AtEpoch(), table, None)
    out = capsys.readouterr().out
    assert out.startswith("3 {'a': ") and out.rstrip().endswith("} 0")  # no units without a plan
