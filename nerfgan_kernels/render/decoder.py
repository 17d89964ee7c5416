"""EG3D's OSG decoder: the small MLP from tri-plane features to colour features and density
(docs/eg3d.md section 6), with EG3D's parameter names."""

from __future__ import annotations

import torch

from .. import _checks
from ..layers import FullyConnectedLayer


class OSGDecoder(torch.nn.Module):
    """EG3D's ``OSGDecoder``: mean of the three plane features -> FC(n_features, hidden_dim) ->
    softplus -> FC(hidden_dim, 1 + decoder_output_dim).

    Parameters (EG3D's state-dict names under ``decoder.``): ``net.0.weight`` (hidden, n_features),
    ``net.0.bias``, ``net.2.weight`` (1 + out, hidden), ``net.2.bias``: raw weights, the equalized
    gain is applied in forward.

    ``forward(sampled_features, ray_directions=None)`` takes EG3D's per-plane features
    (N, 3, M, C) or features already averaged over the planes (N, M, C) (what
    ``triplane_sample(..., reduce="mean")`` returns, so the renderer never materializes the
    per-plane tensor) and returns {'rgb': (N, M, out) = sigmoid(x[..., 1:]) * 1.002 - 0.001,
    'sigma': (N, M, 1) = x[..., :1], the raw density}. The view direction is not used.
    """

    #: The renderer passes (N, M, C) plane-averaged features to decoders that set this.
    accepts_mean_features = True
    #: The renderer skips building per-sample directions for decoders that set this to False.
    uses_directions = False

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, decoder_lr_mul: float = 1.0,
                 decoder_output_dim: int = 32):
        super().__init__()
        self.n_features, self.hidden_dim, self.output_dim = n_features, hidden_dim, decoder_output_dim
        self.net = torch.nn.Sequential(
            FullyConnectedLayer(n_features, hidden_dim, lr_multiplier=decoder_lr_mul),
            torch.nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + decoder_output_dim, lr_multiplier=decoder_lr_mul),
        )

    @classmethod
    def from_options(cls, n_features: int, options: dict) -> "OSGDecoder":
        """EG3D's constructor convention ``OSGDecoder(n_features, rendering_kwargs)``."""
        return cls(n_features, decoder_lr_mul=options.get("decoder_lr_mul", 1.0),
                   decoder_output_dim=options.get("decoder_output_dim", 32))

    def _mean_features(self, sampled_features: torch.Tensor) -> torch.Tensor:
        _checks.check_tensor(sampled_features, "sampled_features", "(N, 3, M, C) or (N, M, C)")
        if sampled_features.dim() not in (3, 4):
            raise ValueError("sampled_features must have shape (N, 3, M, C) or (N, M, C), got "
                             f"{tuple(sampled_features.shape)}")
        x = sampled_features.mean(1) if sampled_features.dim() == 4 else sampled_features
        _checks.check_tensor(x, "sampled_features", f"(..., C = {self.n_features})",
                             sizes={-1: self.n_features})
        return x

    def forward(self, sampled_features: torch.Tensor, ray_directions=None) -> dict:
        x = self._mean_features(sampled_features)
        N, M, C = x.shape
        x = self.net(x.reshape(N * M, C)).view(N, M, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001  # MipNeRF's widened sigmoid
        return {"rgb": rgb, "sigma": x[..., 0:1]}

    def density(self, sampled_features: torch.Tensor) -> torch.Tensor:
        """Only the raw density (N, M, 1) (= forward(...)['sigma'] up to float rounding), without
        computing the colour outputs."""
        x = self._mean_features(sampled_features)
        N, M, C = x.shape
        fc0, act, fc1 = self.net
        h = act(fc0(x.reshape(N * M, C)))
        w = fc1.weight[:1].to(h.dtype) * fc1.weight_gain
        b = fc1.bias[:1].to(h.dtype) * fc1.bias_gain
        return torch.addmm(b.unsqueeze(0), h, w.t()).view(N, M, 1)
