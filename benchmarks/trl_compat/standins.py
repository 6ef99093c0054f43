"""Offline stand-ins for what TRL's SFT tests download: tiny models of the same architectures with their families'
chat templates (in a private Hugging Face cache), and TRL's `zen` test datasets built by TRL's own generator script."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import torch
import transformers
import trl

from ail_trainer.testing import build_tokenizer

TEMPLATES = Path(trl.__file__).parent / "chat_templates"
# hub id suffix -> (config class, chat template, (bos, eos, pad) special tokens)
CHATML = (None, "<|im_end|>", "<|endoftext|>")
FAMILIES = {
    "tiny-Qwen2ForCausalLM-2.5": ("Qwen2Config", "qwen2_5.jinja", CHATML),
    "tiny-Qwen3ForCausalLM": ("Qwen3Config", "qwen3.jinja", CHATML),
    "tiny-LlamaForCausalLM-3.2": ("LlamaConfig", "llama3_2.jinja",
                                  ("<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>")),
    "tiny-LlamaForCausalLM-3.1": ("LlamaConfig", "llama3_1.jinja",
                                  ("<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>")),
    "tiny-LlamaForCausalLM-3": ("LlamaConfig", "llama3.jinja", ("<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>")),
    "tiny-MistralForCausalLM-0.2": ("MistralConfig", None, ("<s>", "</s>", "</s>")),
    "tiny-MistralForCausalLM-0.1": ("MistralConfig", None, ("<s>", "</s>", "</s>")),
    "tiny-GPTNeoXForCausalLM": ("GPTNeoXConfig", None, (None, "<|endoftext|>", "<|endoftext|>")),
    "tiny-Phi3ForCausalLM": ("Phi3Config", "phi3.jinja", ("<s>", "<|end|>", "<|endoftext|>")),
    "tiny-Qwen3MoeForCausalLM": ("Qwen3MoeConfig", "qwen3.jinja", CHATML),
    "tiny-Cohere2ForCausalLM": ("Cohere2Config", "cohere2.jinja", ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<PAD>")),
    "tiny-Glm4MoeForCausalLM": ("Glm4MoeConfig", "glm4moe.jinja", ("[gMASK]", "<|endoftext|>", "<|endoftext|>")),
    "tiny-GptOssForCausalLM": ("GptOssConfig", "gptoss.jinja", ("<|startoftext|>", "<|return|>", "<|endoftext|>")),
    "Qwen3-4B": ("Qwen3Config", "qwen3.jinja", CHATML),
}
# small MoE sizes, set where a config class has the field
MOE = {"moe_intermediate_size": 16, "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4,
       "num_experts_per_tok": 2, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "head_dim": 8}
EXTRA_TOKENS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>", "<|begin_of_text|>", "<|finetune_right_pad_id|>", "<s>", "</s>", "<|user|>",
                "<|assistant|>", "<|system|>", "<|end|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
                "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
                "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "<PAD>", "[gMASK]", "<sop>", "<|observation|>",
                "<|startoftext|>", "<|return|>", "<|start|>", "<|message|>", "<|channel|>", "<|call|>", "<|constrain|>"]


def tokenizer_for(template: str | None, special: tuple):
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": EXTRA_TOKENS})
    bos, eos, pad = special
    tok.bos_token, tok.eos_token, tok.pad_token = bos, eos, pad
    if template:
        tok.chat_template = (TEMPLATES / template).read_text()
    return tok


def build_model(name: str, folder: Path) -> None:
    config_cls, template, special = FAMILIES[name]
    tok = tokenizer_for(template, special)
    cls = getattr(transformers, config_cls)
    fields = cls().to_dict()
    config = cls(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **{k: v for k, v in MOE.items() if k in fields})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def hub_cache(ids: list[str], hub: Path) -> list[str]:
    """Write each buildable hub id as a cached snapshot (`models--org--name`), so offline loading finds it."""
    built = []
    for repo_id in ids:
        org, name = repo_id.split("/")
        if name not in FAMILIES:
            continue
        root = hub / f"models--{org}--{name}"
        snapshot = root / "snapshots" / ("0" * 40)
        if not (snapshot / "config.json").exists():
            build_model(name, snapshot)
            (root / "refs").mkdir(parents=True, exist_ok=True)
            (root / "refs" / "main").write_text("0" * 40)
        built.append(repo_id)
    return built


def test_datasets(scripts: Path, out: Path) -> list[str]:
    """Run TRL's text dataset generators (`scripts/generate_<name>_dataset.py`: zen, harmony, toolcall) with
    `push_to_hub` saving each config under `out/<name>/<config>`."""
    from datasets import DatasetDict

    built = []
    for name in ("zen", "harmony", "toolcall"):  # whichever generators the checkout has
        generator = scripts / f"generate_{name}_dataset.py"
        if not generator.exists():
            continue

        def save(self, repo_id, config_name="default", name=name, **kwargs):
            self.save_to_disk(str(out / name / config_name))

        DatasetDict.push_to_hub = save
        spec = importlib.util.spec_from_file_location(f"generate_{name}_dataset", generator)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(test_size=0.1, push_to_hub=True, repo_id=f"trl-internal-testing/{name}")
        built.append(name)
    return built


def hub_ids(test_file: Path) -> list[str]:
    return sorted(set(re.findall(r"(?:trl-internal-testing|Qwen)/[A-Za-z0-9_.-]+", test_file.read_text())))


if __name__ == "__main__":
    work = Path(sys.argv[1])
    ids = hub_ids(work / "tests" / "test_sft_trainer.py")
    print("built", hub_cache(ids, work / "hf" / "hub"))
    print("datasets", test_datasets(work / "scripts", work / "datasets"))
