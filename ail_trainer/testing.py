"""Build tiny causal LMs with a trained BPE tokenizer and a chat template, offline, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
ARCHS = ("llama", "qwen2", "gpt2")


def default_corpus() -> list[str]:
    from .prompts import load_prompts

    texts = [row["prompt"] + " " + row["completion"] for row in load_prompts("train") + load_prompts("test")]
    return texts + ["<|user|> <|assistant|> <|system|>"]


def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus or default_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: PreTrainedTokenizerFast, arch: str = "llama", hidden_size: int = 64, num_layers: int = 2,
                num_heads: int = 4, intermediate_size: int | None = None, seed: int = 0):
    """A randomly initialized causal LM sized for the tokenizer."""
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    torch.manual_seed(seed)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer))
    inter = intermediate_size or 4 * hidden_size
    if arch == "llama":
        config = LlamaConfig(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                             num_key_value_heads=num_heads, intermediate_size=inter, max_position_embeddings=1024,
                             tie_word_embeddings=True, **ids)
    elif arch == "qwen2":
        config = Qwen2Config(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                             num_key_value_heads=num_heads, intermediate_size=inter, max_position_embeddings=1024,
                             tie_word_embeddings=True, **ids)
    elif arch == "gpt2":
        config = GPT2Config(n_embd=hidden_size, n_layer=num_layers, n_head=num_heads, n_positions=1024, **ids)
    else:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}.")
    return AutoModelForCausalLM.from_config(config)


def build_tiny_model(path: str | Path, arch: str = "llama", hidden_size: int = 64, num_layers: int = 2,
                     num_heads: int = 4, vocab_size: int = 512, seed: int = 0, overwrite: bool = False) -> Path:
    """Save a tiny model and tokenizer to `path` (reused when already built with the same settings)."""
    path = Path(path)
    spec = dict(arch=arch, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                vocab_size=vocab_size, seed=seed)
    marker = path / "ail_tiny_spec.json"
    if not overwrite and marker.exists() and json.loads(marker.read_text()) == spec:
        return path
    tokenizer = build_tokenizer(vocab_size=vocab_size)
    model = build_model(tokenizer, arch, hidden_size, num_layers, num_heads, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    marker.write_text(json.dumps(spec))
    return path


def load(path: str | Path):
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
