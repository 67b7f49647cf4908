"""The CPU fast paths of the shared layers compute the same functions: oneDNN linear (forward and gradients) vs
``F.linear``, the one-hot agent id as a per-agent first-layer bias vs the concatenated input, and the one-pass
per-group gradient clipping vs ``clip_grad_norm_``."""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

from marlkit.algos.base import clip_grad_norms_
from marlkit.nets import mlp
from marlkit.nets.mlp import Linear, MultiAgentMLP, linear, onednn_linear

needs_onednn = pytest.mark.skipif(mlp._LINEAR_POINTWISE is None or not torch.backends.mkldnn.is_available(),
                                  reason="this PyTorch build has no oneDNN linear")


def _fwd_bwd(layer, x, g):
    x = x.clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    y = layer(x)
    (y * g).sum().backward()
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


@needs_onednn
def test_onednn_linear_matches_f_linear():
    torch.manual_seed(0)
    layer = Linear(256, 128)
    x, g = torch.randn(64, 3, 256), torch.randn(64, 3, 128)
    old = onednn_linear(True)
    try:
        fast = _fwd_bwd(layer, x, g)
        onednn_linear(False)
        ref = _fwd_bwd(layer, x, g)
    finally:
        onednn_linear(old)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # float64 reference: both are float32-accurate
    y64 = x.double() @ layer.weight.double().t() + layer.bias.double()
    assert (fast[0].double() - y64).abs().max() < 1e-4


@needs_onednn
def test_onednn_linear_falls_back_where_it_must():
    torch.manual_seed(0)
    w, b = torch.randn(128, 128), torch.randn(128)
    small = torch.randn(8, 128)  # below the row threshold
    torch.testing.assert_close(linear(small, w, b), torch.nn.functional.linear(small, w, b), rtol=0, atol=0)
    xs, ws = torch.randn(3, 100, 128), torch.randn(3, 128, 128)  # inside vmap (populations): F.linear
    out = vmap(lambda x, w_: linear(x, w_))(xs, ws)
    torch.testing.assert_close(out, torch.einsum("kbi,koi->kbo", xs, ws), rtol=1e-5, atol=1e-4)
    x64 = torch.randn(100, 128, dtype=torch.float64)
    assert linear(x64, w.double(), b.double()).dtype == torch.float64


AVX512 = "fpu sse2 avx2 avx512f avx512dq avx512vl"


@pytest.mark.parametrize("vendor, flags, env, expected", [
    ("AuthenticAMD", AVX512, None, True), ("AuthenticAMD", "fpu sse2 avx2", None, False),
    ("GenuineIntel", AVX512, None, False), ("", "", None, False),
    ("GenuineIntel", AVX512, "1", True), ("AuthenticAMD", AVX512, "0", False),
])
def test_onednn_default_follows_the_cpu_vendor_and_avx512_unless_forced(monkeypatch, vendor, flags, env, expected):
    monkeypatch.setattr(mlp, "cpu_info", lambda field: {"vendor_id": vendor, "flags": flags}.get(field, ""))
    if env is None:
        monkeypatch.delenv("MARLKIT_ONEDNN", raising=False)
    else:
        monkeypatch.setenv("MARLKIT_ONEDNN", env)
    assert mlp._onednn_default() is expected


def test_cpu_info_reads_proc_cpuinfo_fields(tmp_path, monkeypatch):
    from marlkit import utils

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n\nprocessor\t: 1\n"
                    "vendor_id\t: GenuineIntel\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(fake if path == "/proc/cpuinfo" else path,
                                                                         *a, **k))
    assert utils.cpu_info("vendor_id") == "AuthenticAMD"  # the first CPU's
    assert utils.cpu_info("Model Name") == "AMD EPYC 9B14"
    assert utils.cpu_info("no such field") == ""
    fake.unlink()
    assert utils.cpu_info("vendor_id") == ""  # no /proc/cpuinfo (other operating systems)


def test_shared_params_is_one_network_on_the_observation_and_a_one_hot_agent_id():
    torch.manual_seed(0)
    net = MultiAgentMLP(4, 5, 3, (32, 32), share_params=True)
    x = torch.randn(2, 7, 4, 5)
    x[..., 1, :] = x[..., 0, :]  # agents 0 and 1 see the same observation
    y = net(x)
    assert not torch.allclose(y[..., 0, :], y[..., 1, :])  # their ids tell them apart
    layers = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    for i in range(4):  # agent by agent, an explicit 3-layer MLP on [o_i, e_i]
        h = torch.cat([x[..., i, :], torch.nn.functional.one_hot(torch.tensor(i), 4).float().expand(2, 7, 4)], -1)
        for k, lin in enumerate(layers):
            h = h @ lin.weight.t() + lin.bias
            h = torch.relu(h) if k < len(layers) - 1 else h
        torch.testing.assert_close(y[..., i, :], h, rtol=1e-5, atol=1e-6)


def test_clip_grad_norms_equals_clip_grad_norm_per_group():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in [(3, 4), (5,), (2, 2), (7,)]]
    grads = [torch.randn(p.shape) * 3 for p in params]
    grads[2] *= 1e-3  # the second group stays below the bound
    for p, gr in zip(params, grads):
        p.grad = gr.clone()
    groups = [params[:2], params[2:3], params[3:]]
    ref = [[torch.nn.Parameter(torch.zeros_like(p)) for p in g] for g in groups]
    for g, r in zip(groups, ref):
        for p, q in zip(g, r):
            q.grad = p.grad.clone()
        torch.nn.utils.clip_grad_norm_(r, 1.0)
    clip_grad_norms_(groups, 1.0)
    for g, r in zip(groups, ref):
        for p, q in zip(g, r):
            assert torch.equal(p.grad, q.grad)
