"""Network building blocks shared by all algorithms (batched over agents)."""

from marlkit.nets.critics import LocalQ, LocalV
from marlkit.nets.mixers import LinearMixer
from marlkit.nets.mlp import BatchedLinear, MultiAgentMLP, mlp_layers
from marlkit.nets.policies import CategoricalPolicy, TanhGaussianPolicy, make_policy, masked_logits
from marlkit.nets.vae import ConditionalVAE

__all__ = ["BatchedLinear", "MultiAgentMLP", "mlp_layers", "LinearMixer", "CategoricalPolicy", "TanhGaussianPolicy",
           "make_policy", "masked_logits", "LocalQ", "LocalV", "ConditionalVAE"]
