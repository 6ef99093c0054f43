"""Stand-ins for what needs a GPU in vLLM, built on vLLM's own classes.

`FakeLLM` replaces `vllm.LLM` only: it takes the constructor arguments TRL's `VLLMGeneration` passes, holds its own
copy of the checkpoint (loaded from disk, as vLLM does, so it knows only the EOS written there), receives the weight
sync through the attribute chain TRL calls, and answers `generate` with real `RequestOutput` / `CompletionOutput`
objects. Sampling is transformers' under each request's seed; sample i of an `n`-sample request uses `seed + i`, as
vLLM's parallel sampling does.

`FakeServer` answers the HTTP endpoints TRL's `VLLMClient` calls on `vllm serve`; every `/v1/completions` body is
validated by vLLM's own `CompletionRequest` (unknown fields refused, where the real server only logs them) and turned
into `SamplingParams` by its `to_sampling_params`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GenerationConfig
from vllm import RequestOutput, SamplingParams
from vllm.entrypoints.openai.completion.protocol import CompletionRequest
from vllm.outputs import CompletionOutput


class Sampler:
    """A checkpoint from disk that samples one `SamplingParams` request and takes weight updates."""

    def __init__(self, path: str):
        self.model = AutoModelForCausalLM.from_pretrained(path).eval()
        disk_eos = self.model.generation_config.eos_token_id
        self.disk_eos = set([disk_eos] if isinstance(disk_eos, int) else disk_eos or [])
        self.requests: list[SamplingParams] = []
        self.weights_seen: list[dict[str, torch.Tensor]] = []

    def load_weights(self, weights) -> None:
        state = self.model.state_dict()
        for name, tensor in weights:
            state[name].copy_(tensor)

    def snapshot(self) -> None:
        self.weights_seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})

    def sample(self, prompt_ids: list[int], params: SamplingParams) -> list[CompletionOutput]:
        assert isinstance(params, SamplingParams)
        self.requests.append(params)
        self.snapshot()
        stops = self.disk_eos | set(params.stop_token_ids or [])
        config = GenerationConfig(
            do_sample=params.temperature > 0, max_new_tokens=params.max_tokens, eos_token_id=sorted(stops),
            pad_token_id=sorted(stops)[0], temperature=params.temperature or 1.0, top_p=params.top_p,
            top_k=params.top_k if params.top_k and params.top_k > 0 else 0,
            repetition_penalty=params.repetition_penalty,
        )
        outputs = []
        for i in range(params.n):
            if params.seed is not None:
                torch.manual_seed(params.seed + i)
            with torch.no_grad():
                seq = self.model.generate(torch.tensor([prompt_ids]), generation_config=config)[0, len(prompt_ids):]
            ids = seq.tolist()
            stop_at = next((t for t, tok in enumerate(ids) if tok in stops), None)
            if stop_at is not None:
                ids = ids[: stop_at + 1]  # vLLM keeps the stop token in token_ids
            outputs.append(CompletionOutput(
                index=i, text="", token_ids=ids, cumulative_logprob=None, logprobs=None,
                finish_reason="stop" if stop_at is not None else "length",
                stop_reason=ids[-1] if stop_at is not None and ids[-1] not in self.disk_eos else None))
        return outputs


class FakeLLM:
    """`vllm.LLM` for TRL's `VLLMGeneration` in colocate mode."""

    instances: list[FakeLLM] = []

    def __init__(self, model: str, **kwargs: Any):
        self.kwargs = kwargs
        self.sampler = Sampler(model)
        runner = SimpleNamespace(model=SimpleNamespace(load_weights=self.sampler.load_weights))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(
            model_runner=runner)))
        self.prefix_cache_resets = 0
        FakeLLM.instances.append(self)

    def reset_prefix_cache(self) -> bool:
        self.prefix_cache_resets += 1
        return True

    def generate(self, prompts: list[dict], sampling_params: Any = None, use_tqdm: bool = True) -> list[RequestOutput]:
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        assert len(params) == len(prompts)
        return [RequestOutput(request_id=str(r), prompt=None, prompt_token_ids=p["prompt_token_ids"],
                              prompt_logprobs=None, outputs=self.sampler.sample(p["prompt_token_ids"], sp),
                              finished=True)
                for r, (p, sp) in enumerate(zip(prompts, params))]


class FakeServer:
    """The endpoints of `vllm serve` that `VLLMClient` uses, on 127.0.0.1, around a `Sampler`."""

    def __init__(self, path: str, max_model_len: int = 512):
        self.sampler, self.max_model_len = Sampler(path), max_model_len
        self.bodies: list[dict] = []
        self.prefix_cache_resets = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    self.reply(200, {})
                elif self.path == "/v1/models":
                    self.reply(200, {"data": [{"id": "tiny"}]})
                else:
                    self.reply(404, {"error": self.path})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/reset_prefix_cache":
                    server.prefix_cache_resets += 1
                    self.reply(200, {"success": True})
                elif self.path == "/v1/completions":
                    try:
                        self.reply(200, server.complete(body))
                    except (ValueError, TypeError) as err:  # pydantic's ValidationError is a ValueError
                        self.reply(400, {"error": str(err)})
                else:
                    self.reply(404, {"error": self.path})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def complete(self, body: dict) -> dict:
        unknown = set(body) - set(CompletionRequest.model_fields)
        if unknown:
            raise ValueError(f"fields vLLM's CompletionRequest does not define: {sorted(unknown)}")
        self.bodies.append(body)
        request = CompletionRequest(**body)
        params = request.to_sampling_params(max_tokens=request.max_tokens or 16)
        choices = []
        for index, prompt_ids in enumerate(request.prompt):
            for out in self.sampler.sample(list(prompt_ids), params):
                choices.append({"index": index, "text": "", "prompt_token_ids": list(prompt_ids),
                                "token_ids": list(out.token_ids), "logprobs": None,
                                "finish_reason": out.finish_reason})
        return {"id": "cmpl", "object": "text_completion", "model": "tiny", "choices": choices}

    def close(self) -> None:
        self.httpd.shutdown()
