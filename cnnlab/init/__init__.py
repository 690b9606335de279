"""cnnlab.init: how to start training (Khan §5.1; Veta's "parameter initialization").

Names and arguments follow `torch.nn.init`: each function fills a Parameter or a float array IN
PLACE and returns it; random ones take `rng=` (numpy Generator, int seed, or None for cnnlab's
library generator, reset by `cnnlab.manual_seed`, see `cnnlab.rng`).

- constants: `zeros_`, `ones_`, `constant_(val)`: cannot break the symmetry between units
- fixed scale: `normal_(mean, std)`, `uniform_(a, b)` (Khan 5.1.1-5.1.2, e.g. std 0.1 or 0.01)
- `orthogonal_(gain)` (Khan 5.1.3)
- fan-scaled: `xavier_normal_`, `xavier_uniform_` (Glorot, Khan eq. 5.1), `kaiming_normal_`,
  `kaiming_uniform_` = `he_normal_`, `he_uniform_` (Khan eq. 5.2), `lecun_normal_`,
  `lecun_uniform_` (Var = 1/fan_in, Veta)
- `calculate_gain(nonlinearity, param)`, `fan_in_and_fan_out(tensor)` (= PyTorch's
  `_calculate_fan_in_and_fan_out`)
- whole networks: `apply(net, scheme, rng=None, gain=None, bias="zeros", X=None, **options)`,
  `lsuv(net, X, tol, max_iter, rng=None)` (Khan 5.1.7), `predicted_variance(scheme, fan_in, fan_out)`,
  `weight_layers(net)`, `SCHEMES`
- measuring: `activation_stats(net, X, rng=None)` -> per-layer output mean/std and gradient std
"""
from cnnlab.init.lsuv import lsuv
from cnnlab.init.network import SCHEMES, apply, init_bias, predicted_variance, weight_layers
from cnnlab.init.probe import LayerStats, activation_stats
from cnnlab.init.schemes import (constant_, he_normal_, he_uniform_, kaiming_normal_, kaiming_uniform_,
                                 lecun_normal_, lecun_uniform_, normal_, ones_, orthogonal_, uniform_,
                                 xavier_normal_, xavier_uniform_, zeros_)
from cnnlab.init.tensors import _calculate_fan_in_and_fan_out, calculate_gain, fan_in_and_fan_out

__all__ = ["calculate_gain", "fan_in_and_fan_out", "_calculate_fan_in_and_fan_out", "zeros_", "ones_",
           "constant_", "normal_", "uniform_", "orthogonal_", "xavier_normal_", "xavier_uniform_",
           "kaiming_normal_", "kaiming_uniform_", "he_normal_", "he_uniform_", "lecun_normal_",
           "lecun_uniform_", "apply", "lsuv", "predicted_variance", "weight_layers", "init_bias", "SCHEMES",
           "activation_stats", "LayerStats"]
