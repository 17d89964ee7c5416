"""A tiny generator for tests and examples, deliberately unlike EG3D: no tri-planes, no
super-resolution; an MLP radiance field conditioned on w, rendered by the ``composite`` op.
It implements the generator protocol (``inversion.protocol.NeRFGenerator``), so the inversion
methods run on it unchanged: the adapter example for a generator that is not a tri-plane one."""

from __future__ import annotations

import copy

import torch
from torch import nn

from nerfgan_kernels import composite
from nerfgan_kernels.models.metadata import GeneratorMetadata
from nerfgan_kernels.render import camera_rays


class MLPRadianceGenerator(nn.Module):
    """z (B, z_dim) -> ws (B, num_ws, w_dim); field(x, w) = MLP([fourier(x), w]) -> rgb, sigma.

    synthesis(ws, c) renders ``resolution``^2 rays with ``n_samples`` stratified (midpoint) samples in
    ``ray_range``; 'image' is the composite, there is no super-resolution."""

    def __init__(self, z_dim: int = 8, w_dim: int = 16, num_ws: int = 2, hidden: int = 32,
                 resolution: int = 16, n_samples: int = 12, ray_range=(2.25, 3.3), init_scale: float = 0.3,
                 seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.w_dim, self.num_ws, self.c_dim = z_dim, w_dim, num_ws, 25
        self.img_resolution = resolution
        self.metadata = GeneratorMetadata()  # FFHQ's cameras, FFHQ's alignment
        self.resolution, self.n_samples, self.ray_range = resolution, n_samples, tuple(ray_range)
        self.mapping_net = nn.Sequential(nn.Linear(z_dim, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim))
        self.field = nn.Sequential(nn.Linear(3 * 8 + w_dim * num_ws, hidden), nn.Softplus(),
                                   nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, 4))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (init_scale if p.dim() > 1 else 0.1))
            w_avg = self.mapping_net(torch.randn(256, z_dim, generator=g)).mean(0)
        self.register_buffer("w_avg_buffer", w_avg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.w_avg_buffer

    def mapping(self, z, c, truncation_psi: float = 1.0, **_):
        w = self.mapping_net(z)
        w = self.w_avg + truncation_psi * (w - self.w_avg)
        return w[:, None].repeat(1, self.num_ws, 1)

    def sample_mixed(self, coords, dirs, ws, **_):
        """coords (B, M, 3) -> {'rgb': (B, M, 3) in [0, 1], 'sigma': (B, M, 1)}."""
        freqs = 2.0 ** torch.arange(4, device=coords.device)
        x = coords[..., None] * freqs
        feat = torch.cat([torch.sin(x).flatten(-2), torch.cos(x).flatten(-2)], -1)
        w = ws.flatten(1)[:, None].expand(-1, coords.shape[1], -1)
        out = self.field(torch.cat([feat, w], -1))
        return {"rgb": torch.sigmoid(out[..., :3]), "sigma": out[..., 3:] * 4}

    def point_query(self, ws):
        """The protocol's point query: sample_mixed for these latents (Kc = 1 broadcast)."""
        def query(coords, dirs):
            if coords.shape[0] != ws.shape[0]:
                coords, dirs = (t.expand(ws.shape[0], *t.shape[1:]) for t in (coords, dirs))
            return self.sample_mixed(coords, dirs, ws)
        return query

    def ray_samples(self, ws, cameras, resolution):
        """No sampler of its own: the regularizers sample stratified in ``ray_range``."""
        return None

    def noise_buffers(self):
        return {}

    def sample_density(self, coords, ws, **_):
        return self.sample_mixed(coords, coords, ws)["sigma"]

    def synthesis(self, ws, c, **_):
        origins, dirs = camera_rays(c, self.resolution)
        B, R, _ = origins.shape
        S = self.n_samples
        near, far = self.ray_range
        depths = near + (far - near) * (torch.arange(S, device=c.device) + 0.5).view(1, 1, S, 1) / S
        depths = depths.expand(B, R, S, 1)
        pts = origins[:, :, None] + depths * dirs[:, :, None]
        out = self.sample_mixed(pts.reshape(B, -1, 3), dirs[:, :, None].expand_as(pts).reshape(B, -1, 3), ws)
        rgb, depth, weights = composite(out["rgb"].reshape(B, R, S, 3), out["sigma"].reshape(B, R, S, 1),
                                        depths.contiguous(), t_min=0.0, alpha_min=0.0)
        H = self.resolution
        image = rgb.permute(0, 2, 1).reshape(B, 3, H, H)
        return {"image": image, "image_raw": image, "image_depth": depth.permute(0, 2, 1).reshape(B, 1, H, H),
                "weights_sum": weights.sum(2)}

    def params_to_tune(self, subset: str = "all"):
        groups = {"all": self, "field": self.field, "mapping": self.mapping_net}
        if subset not in groups:
            raise ValueError(f"subset must be one of {sorted(groups)}, got {subset!r}")
        return list(groups[subset].parameters())

    def clone(self):
        g = copy.deepcopy(self).eval()
        g.requires_grad_(False)
        return g
