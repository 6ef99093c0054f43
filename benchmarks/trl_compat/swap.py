"""pytest plugin for TRL's SFT tests: `trl-internal-testing/zen` loads from the local stand-ins, and with
AIL_SWAP=1 every `SFTTrainer` the tests build is an `ActiveInheritanceTrainer` with `reward_funcs=["length"]`."""

import os
from pathlib import Path

import datasets
import trl

LOCAL = Path(os.environ["AIL_COMPAT_WORK"]) / "datasets"
_load_dataset = datasets.load_dataset


def _split(data, split: str):
    """`train`, or a slice such as `train[:2]` / `train[1:3]`."""
    name, _, rest = split.partition("[")
    data = data[name]
    if rest:
        start, _, stop = rest.rstrip("]").partition(":")
        data = data.select(range(int(start or 0), int(stop) if stop else len(data)))
    return data


def load_dataset(path, name=None, *args, split=None, streaming=False, **kwargs):
    local = LOCAL / path.split("/")[-1]
    if path.startswith("trl-internal-testing/") and local.exists():
        data = datasets.load_from_disk(str(local / name))
        if split is not None:
            data = _split(data, split)
        return data.to_iterable_dataset() if streaming and split is not None else (
            datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in data.items()}) if streaming
            else data)
    return _load_dataset(path, name, *args, split=split, streaming=streaming, **kwargs)


datasets.load_dataset = load_dataset


def _absent(name):
    def absent(*args, **kwargs):
        raise NotImplementedError(f"`{name}` is not in the installed trl")
    return absent


# Names the test file imports that the installed trl lacks: present so the module imports; a test that uses one
# fails under both trainers and drops out of the comparison.
import importlib  # noqa: E402
import importlib.util  # noqa: E402

for _module, _name, _value in [
    (importlib.import_module("trl.trainer.sft_trainer"), "dft_loss", _absent("dft_loss")),
    (importlib.import_module("trl.import_utils"), "is_joblib_available",
     lambda: importlib.util.find_spec("joblib") is not None),
]:
    if not hasattr(_module, _name):
        setattr(_module, _name, _value)

if os.environ.get("AIL_SWAP") == "1":
    from ail_trainer import ActiveInheritanceTrainer

    class DropIn(ActiveInheritanceTrainer):
        """The class swap plus `reward_funcs=`, nothing else."""

        def __init__(self, *args, reward_funcs=None, **kwargs):
            super().__init__(*args, reward_funcs=reward_funcs or ["length"], **kwargs)

    trl.SFTTrainer = DropIn
    importlib.import_module("trl.trainer.sft_trainer").SFTTrainer = DropIn

# On a host without a GPU, TRL's default bf16=True fails every config; the tests then run in fp32, for both trainers.
import torch  # noqa: E402

_base = importlib.import_module("trl.trainer.base_config")
_configs = [v for v in vars(_base).values() if isinstance(v, type) and "bf16" in getattr(v, "__dataclass_fields__", {})]
for _cls in _configs:
    _post_init = _cls.__post_init__

    def _fp32_on_cpu(self, _post_init=_post_init):
        if getattr(self, "bf16", None) is None and not torch.cuda.is_available():
            self.bf16 = False
        _post_init(self)

    _cls.__post_init__ = _fp32_on_cpu
