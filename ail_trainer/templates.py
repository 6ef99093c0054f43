"""How a source is prompted: its tokenizer's chat template (the default), the paper's base-model template, or any
Jinja chat template; and the stop strings that end its answers.

Only generation uses this. Winner rows always train the policy in its own chat format, whatever format the source
that wrote them was prompted with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

# The paper's template for base models, "### Question: {prompt}\n ### Answer: ", as a chat template: a system turn
# becomes a line before the question, and earlier answers follow their questions.
QUESTION_ANSWER = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}### Question: {{ message['content'] }}\n ### Answer: "
    "{% else %}{{ message['content'] }}\n{% endif %}{% endfor %}"
)
# Named templates: (Jinja chat template, default stop strings). A base model runs on into a next "### Question"
# (or "###  \n\nQuestion", seen from Gemma 3 270M), so any "###" ends the answer.
NAMED_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "question_answer": (QUESTION_ANSWER, ("###",)),
}


@dataclass(frozen=True)
class PromptFormat:
    """A source's prompt format. `template` None: the tokenizer's own chat template (conversational prompts) or the
    raw string. A named template renders to text that is then tokenized as plain text, so the tokenizer adds its BOS
    token where the model expects one; a Jinja template is applied as a chat template and owns its special tokens."""

    template: str | None = None
    named: bool = False
    stop_strings: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, template: str | None, stop_strings: list[str] | tuple[str, ...] | None = None,
                owner: str = "prompt_template") -> PromptFormat:
        """`template`: None, a name in `NAMED_TEMPLATES`, or a Jinja chat template; `stop_strings` None takes the
        named template's defaults."""
        if stop_strings is not None and (isinstance(stop_strings, str) or not all(
                isinstance(s, str) and s for s in stop_strings)):
            raise ValueError(f"{owner}: stop_strings must be a list of non-empty strings, got {stop_strings!r}.")
        if template is None:
            return cls(None, False, tuple(stop_strings or ()))
        if template in NAMED_TEMPLATES:
            jinja, stops = NAMED_TEMPLATES[template]
            return cls(jinja, True, tuple(stops if stop_strings is None else stop_strings))
        if "{{" not in template and "{%" not in template:
            raise ValueError(
                f"{owner}={template!r} is neither a named template ({', '.join(NAMED_TEMPLATES)}) nor a Jinja chat "
                "template (one with {{ ... }} or {% ... %}). Use 'question_answer' for the paper's base-model "
                "template, or write a Jinja chat template over `messages`."
            )
        return cls(template, False, tuple(stop_strings or ()))

    @property
    def custom(self) -> bool:
        return self.template is not None

    def render(self, prompts: list[Any], tokenizer: PreTrainedTokenizerBase,
               row_kwargs: list[dict[str, Any]] | None = None) -> list[list[int]]:
        """Token ids of each prompt (a message list or a string, taken as one user turn) in this format."""
        rows = row_kwargs or [{}] * len(prompts)
        messages = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in prompts]
        if self.named:
            texts = [tokenizer.apply_chat_template(m, chat_template=self.template, tokenize=False, **kw)
                     for m, kw in zip(messages, rows)]
            return [list(ids) for ids in tokenizer(texts)["input_ids"]]
        return [list(tokenizer.apply_chat_template(m, chat_template=self.template, add_generation_prompt=True,
                                                   tokenize=True, return_dict=True, **kw)["input_ids"])
                for m, kw in zip(messages, rows)]


def cut_at_stop_strings(text: str, stop_strings: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the first stop string (trailing whitespace removed), and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)].rstrip(), True
