"""Run under ``torchrun --nproc_per_node 2`` by ``test_distributed_valuation.py`` (not a test module).

Every rank builds the same tiny model and data, values them with
``valuate_dataset(..., distributed=True)`` (odd row counts, and a single row so that
one rank has none), and writes its tables to ``OUT/rank<r>.pt``; also checks
``average_buffers`` (BatchNorm statistics averaged over ranks).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder, for _helpers
import _helpers  # noqa: E402

from mmcoop.models import MultimodalClassifier  # noqa: E402
from mmcoop.train.distributed import average_buffers, init_from_env, rank, shutdown  # noqa: E402
from mmcoop.valuation import valuate_dataset  # noqa: E402


def main(out: Path) -> None:
    assert init_from_env(), "run me under torchrun with 2 processes"
    data = _helpers.tiny_data(n=45)
    model = _helpers.tiny_model(data)
    encoded = []  # rows this rank encoded: it must value only its share
    encode = MultimodalClassifier.encode

    def counting_encode(self, inputs, keep=None):  # class-level: valuation runs on a folded copy
        encoded.append(next(iter(inputs.values())).shape[0])
        return encode(self, inputs, keep)

    MultimodalClassifier.encode = counting_encode
    tables = {
        "all": valuate_dataset(model, data, batch_size=8, distributed=True),
        "subset": valuate_dataset(model, data, batch_size=4, rows=torch.tensor([40, 3, 17, 8, 29]), distributed=True),
        "one": valuate_dataset(model, data, batch_size=4, rows=torch.tensor([11]), distributed=True),
    }
    fields = ("index", "label", "phi", "values", "coalition_preds")
    result = {k: {f: getattr(t, f) for f in fields} for k, t in tables.items()}
    result["encoded_rows"] = sum(encoded)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    bn.running_mean.fill_(float(rank()))  # ranks 0 and 1 -> 0.5 after averaging
    bn.running_var.fill_(1.0 + 2.0 * rank())  # 1 and 3 -> 2
    average_buffers(model)
    result["bn"] = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    torch.save(result, out / f"rank{rank()}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
