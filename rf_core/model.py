"""A fully connected network h_0 = x, a_l = W_l h_{l-1} (+ b_l), h_l = σ(a_l); the last layer is linear.

Weights are parameters (they are what is learned) but the learning rules update them by hand, without
autograd, so `requires_grad` is off. The forward pass keeps every a_l and h_l for the rules' backward passes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from rf_core.activations import Activation, make_activation

Tensor = torch.Tensor


class NetworkConfig(Protocol):
    """What building the network reads of a (resolved) training config."""

    @property
    def hidden_sizes(self) -> tuple[int, ...]: ...
    @property
    def activation(self) -> str | None: ...
    @property
    def activation_slope(self) -> float: ...
    @property
    def bias(self) -> bool: ...
    @property
    def init_gain(self) -> float: ...
    @property
    def device(self) -> str: ...


@dataclass
class ForwardCache:
    """Batch-major activations: inputs[l] = h_l (inputs[0] = x), pre[l] = a_{l+1}; pre[-1] are the logits."""

    inputs: list[Tensor]
    pre: list[Tensor]

    @property
    def logits(self) -> Tensor:
        return self.pre[-1]


class MLP(nn.Module):
    def __init__(
        self,
        sizes: list[int],
        activation: Activation,
        *,
        bias: bool = False,
        init_gain: float = 1.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.activation = activation
        self.init_gain = init_gain  # W_l ~ U(±init_gain/√fan_in): rules that size feedback like W's start read it
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if bias else None
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = init_gain / math.sqrt(fan_in)
            w = (torch.rand(fan_out, fan_in, generator=generator, dtype=dtype) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w.to(device), requires_grad=False))
            if self.biases is not None:
                self.biases.append(nn.Parameter(torch.zeros(fan_out, dtype=dtype, device=device), requires_grad=False))

    @classmethod
    def from_config(cls, config: NetworkConfig, input_dim: int, num_classes: int, generator: torch.Generator) -> MLP:
        if config.activation is None:
            raise ValueError("activation: resolve the config first (TrainConfig.resolved)")
        sizes = [input_dim, *config.hidden_sizes, num_classes]
        return cls(
            sizes,
            make_activation(config.activation, config.activation_slope),
            bias=config.bias,
            init_gain=config.init_gain,
            generator=generator,
            device=config.device,
        )

    @property
    def num_layers(self) -> int:
        return len(self.weights)

    def forward_cached(self, x: Tensor) -> ForwardCache:
        inputs, pre = [x], []
        h = x
        last = self.num_layers - 1
        for l, w in enumerate(self.weights):
            a = h @ w.T
            if self.biases is not None:
                a = a + self.biases[l]
            pre.append(a)
            if l < last:
                h = self.activation.forward(a)
                inputs.append(h)
        return ForwardCache(inputs, pre)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        h = x
        last = self.num_layers - 1
        for l, w in enumerate(self.weights):
            h = h @ w.T
            if self.biases is not None:
                h = h + self.biases[l]
            if l < last:
                h = self.activation.forward(h)
        return h
