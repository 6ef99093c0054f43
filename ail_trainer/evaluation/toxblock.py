"""An independent toxicity judge: ToxBlock 0.1.2's bidirectional LSTM (GloVe-initialized, trained on Jigsaw's toxic
comments, 6 labels), read from the Keras files in PyPI's `tox-block` wheel into torch, without TensorFlow.

Keras 2's semantics are kept: the tokenizer lower-cases, strips its filter characters and keeps the 19,999 most
frequent words; sequences are padded and cut to 100 tokens at the front ('pre'); the LSTM gates are ordered i, f, c, o
with a hard sigmoid (clip(0.2x + 0.5, 0, 1)) and run over the padding too, as the model was trained.
"""

from __future__ import annotations

import importlib.metadata
import pickle
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
# ToxBlock's min-max ranges per label (`tox_block.config.RESCALE_PROBA`), for its `rescale=True` outputs
RESCALE = {"toxic": (0.002116, 0.999858), "severe_toxic": (0.000011, 0.648682), "obscene": (0.000347, 0.997533),
           "threat": (0.000040, 0.918887), "insult": (0.000373, 0.986303), "identity_hate": (0.000074, 0.901117)}
INSTALL = "pip install --no-deps tox-block==0.1.2 && pip install h5py"
MODEL_FILE = "tox_block/trained_models/lstm_model_0.1.2.h5"
ENCODER_FILE = "tox_block/trained_models/encoder_0.1.2.pkl"


def wheel_file(relative: str) -> Path:
    try:
        dist = importlib.metadata.distribution("tox-block")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"The ToxBlock judge reads its weights from PyPI's tox-block wheel, which is not installed: "
                          f"run `{INSTALL}` (scripts/install.sh does).") from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise FileNotFoundError(f"The installed tox-block {dist.version} has no {relative}; reinstall it: `{INSTALL}`.")
    return path


class _Stub:
    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _EncoderUnpickler(pickle.Unpickler):
    """Rebuilds the pickled Keras tokenizer as plain attributes; any other class in the file is refused."""

    STUBS = {("tox_block.data_processing.preprocessors", "TokenSequencer"), ("keras_preprocessing.text", "Tokenizer")}
    ALLOWED = {("collections", "OrderedDict"), ("collections", "defaultdict"), ("builtins", "int")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.STUBS:
            return _Stub
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{ENCODER_FILE} holds {module}.{name}, which the ToxBlock reader does not "
                                     "expect.")


class KerasTokenizer:
    """`keras_preprocessing.text.Tokenizer.texts_to_sequences` and `pad_sequences(maxlen)` with its 'pre' defaults."""

    def __init__(self, word_index: dict[str, int], num_words: int, filters: str, max_length: int):
        self.vocab = {w: i for w, i in word_index.items() if i < num_words}
        self.table = str.maketrans(filters, " " * len(filters))
        self.max_length = max_length

    @classmethod
    def from_pickle(cls, path: Path) -> KerasTokenizer:
        with open(path, "rb") as f:
            encoder = _EncoderUnpickler(f).load()
        tok = encoder.tokenizer
        if tok.char_level or not tok.lower or tok.oov_token is not None or tok.split != " ":
            raise ValueError(f"{path}: a tokenizer configuration the ToxBlock reader does not implement.")
        return cls(tok.word_index, tok.num_words, tok.filters, encoder.max_sequence_length)

    def encode(self, text: str) -> list[int]:
        words = text.lower().translate(self.table).split(" ")
        ids = [self.vocab[w] for w in words if w in self.vocab]
        ids = ids[-self.max_length:]
        return [0] * (self.max_length - len(ids)) + ids

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)


class KerasLSTM(nn.Module):
    """One direction of a Keras 2 LSTM: gates i, f, c, o; hard sigmoid on the gates, tanh on the cell."""

    def __init__(self, kernel: torch.Tensor, recurrent: torch.Tensor, bias: torch.Tensor, reverse: bool):
        super().__init__()
        self.kernel, self.recurrent, self.bias = nn.Parameter(kernel), nn.Parameter(recurrent), nn.Parameter(bias)
        self.reverse = reverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        units = self.recurrent.shape[0]
        h = x.new_zeros(x.shape[0], units)
        c = x.new_zeros(x.shape[0], units)
        projected = x @ self.kernel + self.bias
        steps = range(x.shape[1] - 1, -1, -1) if self.reverse else range(x.shape[1])
        out = []
        for t in steps:
            z = projected[:, t] + h @ self.recurrent
            i, f, g, o = z.split(units, dim=-1)
            hard = lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0)
            c = hard(f) * c + hard(i) * torch.tanh(g)
            h = hard(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)


class ToxBlockModel(nn.Module):
    """Embedding → bidirectional LSTM → global max pool over time → Dense(relu) → Dense(sigmoid), 6 labels."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(weights["embedding/embedding/embeddings:0"])
        lstm = "bidirectional/bidirectional/{}_lstm/{}:0"
        self.forward_lstm, self.backward_lstm = (
            KerasLSTM(weights[lstm.format(d, "kernel")], weights[lstm.format(d, "recurrent_kernel")],
                      weights[lstm.format(d, "bias")], reverse=d == "backward") for d in ("forward", "backward"))
        self.hidden = nn.Linear(100, 50)
        self.out = nn.Linear(50, 6)
        with torch.no_grad():
            for layer, name in ((self.hidden, "dense/dense"), (self.out, "dense_1/dense_1")):
                layer.weight.copy_(weights[f"{name}/kernel:0"].T)
                layer.bias.copy_(weights[f"{name}/bias:0"])

    @classmethod
    def from_h5(cls, path: Path) -> ToxBlockModel:
        try:
            import h5py
        except ImportError:
            raise ImportError("Reading ToxBlock's Keras weights needs h5py: run `pip install h5py` "
                              "(or `pip install 'ail-trainer[evaluation]'`).") from None
        weights: dict[str, torch.Tensor] = {}
        with h5py.File(path, "r") as f:
            f["model_weights"].visititems(lambda name, item: weights.__setitem__(name, torch.tensor(item[()]))
                                          if isinstance(item, h5py.Dataset) else None)
        return cls(weights).eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        features = torch.cat([self.forward_lstm(x), self.backward_lstm(x)], dim=-1).amax(dim=1)
        return torch.sigmoid(self.out(torch.relu(self.hidden(features))))


@lru_cache(maxsize=1)
def _load() -> tuple[KerasTokenizer, ToxBlockModel]:
    return KerasTokenizer.from_pickle(wheel_file(ENCODER_FILE)), ToxBlockModel.from_h5(wheel_file(MODEL_FILE))


class ToxBlockJudge:
    """Toxicity by ToxBlock's BiLSTM: the probability of its `toxic` label (or any of `LABELS`), raw (not min-max
    rescaled). A judge independent of the `toxicity` reward's bag-of-words model."""

    name = "toxblock"

    def __init__(self, label: str = "toxic", batch_size: int = 64):
        if label not in LABELS:
            raise ValueError(f"ToxBlock has no label {label!r}; its labels are {list(LABELS)}.")
        self.column = LABELS.index(label)
        self.batch_size = batch_size
        self.tokenizer, self.model = _load()

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str], rescale: bool = False) -> torch.Tensor:
        """Every label's probability per text, shape (len(texts), 6); with `rescale`, min-max scaled per label as
        ToxBlock's `make_predictions(rescale=True)` returns them."""
        rows = [self.model(self.tokenizer(texts[i:i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        probs = torch.cat(rows) if rows else torch.zeros(0, len(LABELS))
        if rescale:
            low, high = (torch.tensor([RESCALE[label][j] for label in LABELS]) for j in (0, 1))
            probs = ((probs - low) / (high - low)).abs()
        return probs

    def __call__(self, texts: Sequence[str]) -> list[float]:
        return self.probabilities(list(texts))[:, self.column].tolist()
