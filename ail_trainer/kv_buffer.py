"""Key-value caches that grow in place while sampling.

transformers' `DynamicLayer` concatenates its whole cache with each new token, so a decode of n tokens copies the
cache n times over. `BufferedLayer` keeps each layer's keys and values in buffers sized for the whole decode and
writes every new token in place; attention reads a view of the filled part, the same values as the concatenated
tensors. It touches transformers' cache-layer internals (`DynamicLayer`'s `keys` and `values`), so it is only
applied to layers of exactly that class and is tested against them (tests/test_kv_buffer.py).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


class BufferedLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of preallocated buffers along the sequence axis."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._store(keys, values, capacity)

    def _store(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        length = keys.shape[-2]
        capacity = max(capacity, length)
        self._keys = keys.new_empty((*keys.shape[:-2], capacity, keys.shape[-1]))
        self._values = values.new_empty((*values.shape[:-2], capacity, values.shape[-1]))
        self._keys[..., :length, :] = keys
        self._values[..., :length, :] = values
        self._view(length)

    def _view(self, length: int) -> None:
        self._length = length
        self.keys = self._keys[..., :length, :]
        self.values = self._values[..., :length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self._length + key_states.shape[-2]
        if end > self._keys.shape[-2]:  # past the planned length: double, as a list grows
            self._store(self.keys, self.values, max(end, 2 * self._keys.shape[-2]))
        self._keys[..., self._length:end, :] = key_states
        self._values[..., self._length:end, :] = value_states
        self._view(end)
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self._view(self.keys.shape[-2])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._store(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0),
                    self._keys.shape[-2])

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        # one copy of the whole buffer, not a gather of the filled part and a second copy into a new buffer
        self._keys, self._values = self._keys.index_select(0, indices), self._values.index_select(0, indices)
        self._view(self._length)

    def reset(self) -> None:
        raise NotImplementedError("A BufferedLayer holds one decode; start a new cache instead of resetting it.")


def buffer_cache(cache: Any, new_tokens: int) -> int:
    """Give each of `cache`'s filled `DynamicLayer`s room for `new_tokens` more tokens, in place; other layer types
    (sliding windows, static or quantized layers) are left as they are. Returns how many layers were buffered."""
    buffered = 0
    for i, layer in enumerate(getattr(cache, "layers", [])):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys is not None and layer.keys.dim() == 4:
            cache.layers[i] = BufferedLayer(layer.keys, layer.values, layer.keys.shape[-2] + new_tokens)
            buffered += 1
    return buffered
