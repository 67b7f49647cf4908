"""A straightforward per-agent Python-loop OMIGA, the way research code is usually written: one set of
networks per agent, a Python loop over agents in every forward pass, V(o) and V(o') in separate passes, one
optimizer per network. It computes the same losses as ``marlkit.algos.omiga`` (Eqs. 12–14) and exists only so
``update_speed.py`` can measure the gain of batching the agent dimension side by side. Not part of marlkit.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _mlp(sizes):
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LoopOMIGA:
    """Per-agent-loop OMIGA for continuous (tanh-Gaussian) or discrete (categorical) actions."""

    def __init__(self, spec, hidden=(256, 256), alpha=10.0, gamma=0.99, tau=0.005, lr=5e-4, device="cpu"):
        self.spec, self.alpha, self.gamma, self.tau = spec, alpha, gamma, tau
        n, o = spec.n_agents, spec.obs_dim
        self.discrete = spec.discrete
        a_in = 0 if self.discrete else spec.act_dim
        q_out = spec.n_actions if self.discrete else 1
        pi_out = spec.n_actions if self.discrete else 2 * spec.act_dim
        self.q = [_mlp([o + a_in, *hidden, q_out]).to(device) for _ in range(n)]
        self.v = [_mlp([o, *hidden, 1]).to(device) for _ in range(n)]
        self.pi = [_mlp([o, *hidden, pi_out]).to(device) for _ in range(n)]
        self.w_net = _mlp([spec.state_dim, 64, n]).to(device)
        self.b_net = _mlp([spec.state_dim, 64, 1]).to(device)
        self.q_t = [copy.deepcopy(m) for m in self.q]
        self.w_t, self.b_t = copy.deepcopy(self.w_net), copy.deepcopy(self.b_net)
        self.opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in self.q + self.v + self.pi]
        self.opts.append(torch.optim.Adam(list(self.w_net.parameters()) + list(self.b_net.parameters()), lr=lr))

    def _q(self, nets, obs, act, i):
        if self.discrete:
            return nets[i](obs[:, i]).gather(-1, act[:, i].long().unsqueeze(-1)).squeeze(-1)
        return nets[i](torch.cat([obs[:, i], act[:, i]], -1)).squeeze(-1)

    def _logp(self, obs, act, i):
        out = self.pi[i](obs[:, i])
        if self.discrete:
            return torch.log_softmax(out, -1).gather(-1, act[:, i].long().unsqueeze(-1)).squeeze(-1)
        mean, log_std = out.chunk(2, -1)
        log_std = log_std.clamp(-5, 2)
        a = act[:, i].clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(a)
        lp = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.9189385 - torch.log1p(-a.pow(2) + 1e-6)
        return lp.sum(-1)

    def update(self, batch):
        obs, nobs, act = batch["observations"], batch["next_observations"], batch["actions"]
        s, ns = batch["states"], batch["next_states"]
        n = self.spec.n_agents
        with torch.no_grad():
            w_bar = self.w_t(s).abs()
            w_next, b_next = self.w_t(ns).abs(), self.b_t(ns).squeeze(-1)
            q_bar = torch.stack([self._q(self.q_t, obs, act, i) for i in range(n)], 1)
            v_next = torch.stack([self.v[i](nobs[:, i]).squeeze(-1) for i in range(n)], 1)
            target = batch["rewards"] + self.gamma * (1 - batch["terminals"]) * ((w_next * v_next).sum(-1) + b_next)
        v = torch.stack([self.v[i](obs[:, i]).squeeze(-1) for i in range(n)], 1)
        z = (w_bar * (q_bar - v) / self.alpha).clamp(-10, 10)
        m = z.max().detach().clamp(min=-1.0)
        v_loss = (torch.exp(z - m) + torch.exp(-m) * w_bar * v / self.alpha).mean()
        q = torch.stack([self._q(self.q, obs, act, i) for i in range(n)], 1)
        q_tot = (self.w_net(s).abs() * q).sum(-1) + self.b_net(s).squeeze(-1)
        q_loss = (target - q_tot).pow(2).mean()
        logp = torch.stack([self._logp(obs, act, i) for i in range(n)], 1)
        pi_loss = -(torch.exp(z).detach() * logp).mean()
        for opt in self.opts:
            opt.zero_grad()
        (q_loss + v_loss + pi_loss).backward()
        for opt in self.opts:
            opt.step()
        with torch.no_grad():
            for tgt, src in zip(self.q_t + [self.w_t, self.b_t], self.q + [self.w_net, self.b_net]):
                for pt, ps in zip(tgt.parameters(), src.parameters()):
                    pt.mul_(1 - self.tau).add_(ps, alpha=self.tau)
        return {"q_loss": q_loss.detach(), "v_loss": v_loss.detach(), "policy_loss": pi_loss.detach()}
