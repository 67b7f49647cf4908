"""Batched multi-agent MLPs: one tensor op for all agents, never a Python loop over them.

Layout: inputs ``[B, N, in]`` → outputs ``[B, N, out]``. With separate parameters each layer holds weights
``[N, in, out]`` and runs one batched matmul (``baddbmm``) over the agent axis (the ``VectorizedLinear`` trick of
CORL). With ``share_params=True`` one network serves all agents and a one-hot agent id is appended to the input
(as the official OMIGA code does). Extra leading dims (e.g. a population axis ``[K, B, N, in]``) are flattened
into the batch.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import torch
from torch import nn

from marlkit.utils import cpu_info

__all__ = ["BatchedLinear", "Linear", "MultiAgentMLP", "batched_linear", "batched_mlp", "linear", "mlp_layers", "onednn_linear"]

_LINEAR_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _onednn_default() -> bool:
    """``MARLKIT_ONEDNN`` (``1`` on, ``0`` off) where set, else on for x86 CPUs with AVX-512 other than Intel's."""
    env = os.environ.get("MARLKIT_ONEDNN")
    if env is not None:
        return env != "0"
    return cpu_info("vendor_id") not in ("GenuineIntel", "") and "avx512f" in cpu_info("flags").split()


_ONEDNN = {"enabled": _onednn_default() and _LINEAR_POINTWISE is not None and torch.backends.mkldnn.is_available()}
ONEDNN_MIN_FEATURES = 128
"""Smallest in and out width of a layer whose CPU products go to oneDNN (below it MKL is as fast or faster)."""
ONEDNN_MIN_ROWS = 64
"""Smallest number of input rows (batch × agents) for the oneDNN path."""


def onednn_linear(enabled: bool | None = None) -> bool:
    """Whether large float32 CPU linear layers run on oneDNN's matmul; ``enabled`` switches it (returns the old
    value). Default: on for non-Intel x86 CPUs with AVX-512 (``avx512f`` in ``/proc/cpuinfo``'s flags) where
    PyTorch ships oneDNN; off on Intel CPUs, on CPUs without AVX-512 and where the CPU cannot be read; the
    environment variable ``MARLKIT_ONEDNN=1`` / ``0`` forces it on / off. Run records state the setting
    (``onednn_linear``), since it changes the summation order and so a long run's trajectory.

    Why: PyTorch's CPU ``linear``/``mm`` call MKL's sgemm, which on non-Intel x86 CPUs runs its AVX2 code;
    oneDNN's JIT kernels use AVX-512 wherever the CPU has it (about 2× the float32 throughput for the
    ``[768, 256] × [256, 256]`` products of a paper-size update on an AVX-512 AMD EPYC). Without AVX-512 both run
    AVX2 code and MKL is the faster: on a 2-core AMD EPYC with AVX2 only, one thread, oneDNN took 1.13–1.26× MKL's
    time per OMIGA update at HalfCheetah-6x1 sizes (shared networks), its weight-gradient product ``gradᵀ x``
    1.57–1.92 against MKL's 1.17–1.30 ms (``benchmarks/linear_backend.py``, ``benchmarks/RESULTS.md``). On
    Intel CPUs MKL runs AVX-512 itself, and there oneDNN's ``gradᵀ x`` is the slower of the two (one thread of an
    AVX-512 Intel Xeon: 72 against MKL's 98 GFLOP/s for ``[256, 768] × [768, 256]``; whole updates in
    ``benchmarks/RESULTS.md``). Same IEEE float32 arithmetic; results differ from MKL's only by summation order.
    """
    old = _ONEDNN["enabled"]
    if enabled is not None:
        if enabled and _LINEAR_POINTWISE is None:
            raise RuntimeError("this PyTorch build has no oneDNN linear (torch.ops.mkldnn._linear_pointwise)")
        _ONEDNN["enabled"] = bool(enabled)
    return old


class _OneDNNLinear(torch.autograd.Function):
    """``y = x Wᵀ + b`` for 2-d float32 CPU tensors, forward and backward products on oneDNN.

    Written with ``forward(ctx, ...)`` and no ``setup_context``: with ``setup_context`` every ``apply`` binds its
    arguments through ``inspect.signature`` (about 3 % of a small OMIGA update); that form exists for ``torch.func``
    transforms, under which :func:`linear` never takes this path.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _LINEAR_POINTWISE(grad, weight.t(), None, "none", [], "")  # grad @ W
        if ctx.needs_input_grad[1]:
            gw = _LINEAR_POINTWISE(grad.t(), x.t(), None, "none", [], "")  # gradᵀ @ x
        if ctx.needs_input_grad[2]:
            gb = grad.sum(0)
        return gx, gw, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` (``[..., in] → [..., out]``), on oneDNN for large float32 CPU layers.

    The oneDNN path (see :func:`onednn_linear`) is taken for plain float32 CPU tensors when both widths are at least
    :data:`ONEDNN_MIN_FEATURES` and the flattened batch has at least :data:`ONEDNN_MIN_ROWS` rows, outside
    ``torch.func`` transforms (vmapped populations) and ``torch.compile``; everything else is ``F.linear``.
    """
    if (_ONEDNN["enabled"] and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and weight.shape[0] >= ONEDNN_MIN_FEATURES and weight.shape[1] >= ONEDNN_MIN_FEATURES
            and type(x) is torch.Tensor and type(weight) in (torch.Tensor, nn.Parameter)
            and x.layout == torch.strided and x.numel() >= ONEDNN_MIN_ROWS * x.shape[-1]
            and not torch._C._are_functorch_transforms_active() and not torch.compiler.is_compiling()):
        x2 = x.reshape(-1, x.shape[-1])
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                        or (bias is not None and bias.requires_grad)):
            y = _OneDNNLinear.apply(x2, weight, bias)
        else:
            y = _LINEAR_POINTWISE(x2, weight, bias, "none", [], "")
        return y.view(*x.shape[:-1], weight.shape[0])
    return nn.functional.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class BatchedLinear(nn.Module):
    """``members`` independent linear layers applied at once: ``[B, M, in] -> [B, M, out]``.

    Weights ``[M, in, out]`` and biases ``[M, out]`` are initialised like ``nn.Linear`` (Kaiming-uniform with
    ``a=sqrt(5)``), each member on its own.
    """

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        if members <= 0 or in_features <= 0 or out_features <= 0:
            raise ValueError(f"BatchedLinear sizes must be positive, got members={members}, in={in_features}, "
                             f"out={out_features}")
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)  # same range as nn.Linear's default for these shapes
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., M, in]`` → ``[..., M, out]``."""
        lead = x.shape[:-2]
        x2 = x.reshape(-1, self.members, self.in_features).transpose(0, 1)  # [M, B, in]
        y = batched_linear(x2, self.weight, self.bias)  # [M, B, out]
        return y.transpose(0, 1).reshape(*lead, self.members, self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def batched_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x [M, R, in] @ weight [M, in, out] + bias [M, out]`` → ``[M, R, out]``: one ``baddbmm`` (the bias fused into
    the product); under ``torch.func`` transforms (vectorized populations), where ``vmap`` splits ``baddbmm`` into a
    product and an out-of-place sum, the product with the bias added in place (measured on ``[8 runs, 6, 1280, 256]``:
    103 ms against 137 ms, the same as 8 sequential ``baddbmm``)."""
    if torch._C._are_functorch_transforms_active():
        return torch.bmm(x, weight).add_(bias.unsqueeze(1))
    return torch.baddbmm(bias.unsqueeze(1), x, weight)


def batched_mlp(layers: nn.Sequential, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
    """A stack of :class:`BatchedLinear` layers (and activations) on member-major activations:
    ``x [M, R, in] → [M, R, out]``, one product per layer and no layout change between layers. ``members`` runs a
    slice of the members alone (``x`` then has the slice's M), e.g. :meth:`marlkit.nets.critics.LocalQ.member`."""
    for layer in layers:
        if isinstance(layer, BatchedLinear):
            w, b = (layer.weight, layer.bias) if members is None else (layer.weight[members], layer.bias[members])
            x = batched_linear(x, w, b)
        elif isinstance(layer, nn.ReLU):
            x = torch.relu_(x)  # in place on the product (its backward needs only the inputs): no new activation
        else:
            x = layer(x)
    return x


def mlp_layers(sizes: Sequence[int], members: int | None, activation=nn.ReLU) -> nn.Sequential:
    """Linear(+activation) stack over ``sizes``; ``members=None`` gives :class:`Linear` (``nn.Linear``) layers."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        lin = Linear(sizes[k], sizes[k + 1]) if members is None else BatchedLinear(members, sizes[k], sizes[k + 1])
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MultiAgentMLP(nn.Module):
    """An MLP per agent, batched: ``[..., N, in_dim] -> [..., N, out_dim]``.

    Args:
        n_agents: N.
        in_dim: per-agent input size.
        out_dim: per-agent output size.
        hidden: hidden layer sizes (``(256, 256)`` gives a 3-layer MLP, the papers' setting).
        share_params: one network for all agents with a one-hot agent id appended to the input.
        activation: hidden activation class.

    Raises:
        ValueError: if the input's last two dims are not ``[N, in_dim]``.
    """

    def __init__(self, n_agents: int, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256),
                 share_params: bool = False, activation=nn.ReLU):
        super().__init__()
        self.n_agents, self.in_dim, self.out_dim, self.share_params = n_agents, in_dim, out_dim, share_params
        first = in_dim + (n_agents if share_params else 0)
        self.net = mlp_layers([first, *hidden, out_dim], None if share_params else n_agents, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.n_agents, self.in_dim):
            raise ValueError(f"MultiAgentMLP expects input [..., N={self.n_agents}, in={self.in_dim}], got "
                             f"{tuple(x.shape)}")
        if self.share_params:
            # the one-hot agent id appended to the input (as the official OMIGA code): one product with the bias
            # fused, where adding it as a per-agent bias of the first layer costs an extra pass over that layer's
            # output and its gradient (measured 1.05–1.09× slower per update at HalfCheetah-6x1 sizes)
            ids = torch.eye(self.n_agents, dtype=x.dtype, device=x.device).expand(*x.shape[:-1], self.n_agents)
            return self.net(torch.cat([x, ids], -1))
        return self.net(x)
