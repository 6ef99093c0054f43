"""Teachers behind an OpenAI-compatible endpoint: the client, one request for n samples, the preflight, and errors
with the API key blanked out. `sources.EndpointSource` sends a round's requests through these."""

from __future__ import annotations

from typing import Any

from .generation import SamplingSettings
from .teachers import Endpoint


def endpoint_client(endpoint: Endpoint, max_retries: int | None = None):
    try:
        import openai
    except ImportError:
        raise ImportError("Endpoint teachers need the `openai` client: pip install openai "
                          "(or pip install 'ail-trainer[endpoint]').") from None
    return openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key(), timeout=endpoint.timeout,
                         max_retries=endpoint.max_retries if max_retries is None else max_retries)


def request_samples(client: Any, model: str, prompt: Any, n: int, sampling: SamplingSettings,
                    conversational: bool) -> list[tuple[str, bool]]:
    """One request for `n` samples: (text, stopped before the token limit) per choice returned."""
    extra = {k: v for k, v in (("top_k", sampling.top_k), ("repetition_penalty", sampling.repetition_penalty))
             if v not in (0, 1.0, None)}
    kwargs = dict(model=model, n=n, max_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                  top_p=sampling.top_p, extra_body=extra or None)
    if conversational:
        response = client.chat.completions.create(messages=prompt, **kwargs)
        return [(c.message.content or "", c.finish_reason != "length") for c in response.choices]
    response = client.completions.create(prompt=prompt, **kwargs)
    return [(c.text or "", c.finish_reason != "length") for c in response.choices]


def describe_error(err: Exception, endpoint: Endpoint) -> str:
    """An error as text, with the API key (should a server echo it) blanked out."""
    text = f"{type(err).__name__}: {err}"
    key = endpoint.api_key()
    return text.replace(key, "***") if endpoint.api_key_env and key else text


def preflight_endpoint(endpoint: Endpoint, conversational: bool) -> bool:
    """One tiny request before any compute: fails clearly when the server is unreachable or does not serve the
    model; returns whether it honours `n` (several choices per request)."""
    import openai

    probe = [{"role": "user", "content": "Hi"}] if conversational else "Hi"
    settings = SamplingSettings(max_new_tokens=1)
    try:
        samples = request_samples(endpoint_client(endpoint, max_retries=1), endpoint.model, probe, 2, settings,
                                  conversational)
    except openai.APIConnectionError as err:
        raise ConnectionError(
            f"Teacher {endpoint.name}: the endpoint {endpoint.base_url} could not be reached "
            f"({describe_error(err, endpoint)}). Start the server, or fix base_url (it usually ends in /v1)."
        ) from None
    except openai.AuthenticationError as err:
        raise PermissionError(
            f"Teacher {endpoint.name}: {endpoint.base_url} rejected the API key from ${endpoint.api_key_env} "
            f"({describe_error(err, endpoint)}). Check the key, or the variable named by api_key_env."
        ) from None
    except openai.APIStatusError as err:
        raise ValueError(
            f"Teacher {endpoint.name}: {endpoint.base_url} refused a test request for model {endpoint.model!r} "
            f"({describe_error(err, endpoint)}). Check that `model` is the name the server serves."
        ) from None
    return len(samples) >= 2
