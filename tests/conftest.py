import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    from ail_trainer.testing import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama"))


@pytest.fixture
def tiny(tiny_path):
    from ail_trainer.testing import load

    return load(tiny_path)


@pytest.fixture
def make_args(tmp_path):
    from ail_trainer import ActiveInheritanceConfig

    def make(**kw):
        base = dict(output_dir=str(tmp_path / "out"), num_candidates=3, max_completion_length=8,
                    per_device_train_batch_size=4, num_train_epochs=1, report_to=[], save_strategy="no",
                    learning_rate=1e-3, logging_steps=1, disable_tqdm=True, seed=0)
        base.update(kw)
        return ActiveInheritanceConfig(**base)

    return make


@pytest.fixture(scope="session")
def detoxify_checkpoint(tmp_path_factory):
    """A tiny, structurally valid Detoxify checkpoint with a local BERT config and tokenizer folder."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root = tmp_path_factory.mktemp("detoxify")
    folder = root / "tiny-bert"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "an", "idiot", "stupid", "have", "a",
             "lovely", "day", "thank", "so", "much", "!", "."]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(classes))
    config.save_pretrained(folder)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    checkpoint = root / "tiny.ckpt"
    torch.save({
        "config": {
            "arch": {"args": {"model_type": str(folder), "model_name": "BertForSequenceClassification",
                              "tokenizer_name": "BertTokenizer", "num_classes": len(classes)}},
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }, checkpoint)
    return str(checkpoint), str(folder)
