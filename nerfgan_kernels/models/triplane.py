"""EG3D's TriPlaneGenerator on this package's kernels: mapping -> StyleGAN2 backbone -> tri-planes ->
importance renderer (our kernels) -> super-resolution. State-dict keys and shapes equal EG3D's.

It also implements the generator protocol that the inversion methods use
(``inversion.protocol.NeRFGenerator``, docs/design.md): ``point_query``, ``ray_samples``,
``ray_range``, ``noise_buffers``, ``params_to_tune``, ``clone`` and ``metadata``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..render import ImportanceRenderer, OSGDecoder, camera_rays
from .metadata import GeneratorMetadata
from .stylegan2 import StyleGAN2Backbone
from .superresolution import SUPERRESOLUTION_MODULES

PLANE_CHANNELS = 32


class TriPlaneGenerator(nn.Module):
    """EG3D-compatible tri-plane generator.

    Constructor arguments are EG3D's (``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``,
    ``img_channels``, ``sr_num_fp16_res``, ``mapping_kwargs``, ``rendering_kwargs``, ``sr_kwargs``,
    and the backbone's ``channel_base``, ``channel_max``, ``num_fp16_res``, ``conv_clamp``,
    ``fused_modconv_default``), so an EG3D pickle's init kwargs construct it directly.
    ``neural_rendering_resolution`` is a plain attribute, as in EG3D (default 64).
    ``aliased_image_raw=True`` returns EG3D's aliased ``image_raw`` (docs/eg3d.md section 10);
    the default is the clean composite. ``metadata`` (``GeneratorMetadata``): the camera geometry
    and alignment convention; the checkpoint loaders fill it from the checkpoint's config.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int = 3,
                 sr_num_fp16_res: int = 0, mapping_kwargs: dict | None = None,
                 rendering_kwargs: dict | None = None, sr_kwargs: dict | None = None,
                 aliased_image_raw: bool = False, **synthesis_kwargs):
        super().__init__()
        rendering_kwargs = dict(rendering_kwargs or {})
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, sr_num_fp16_res=sr_num_fp16_res,
                                mapping_kwargs=dict(mapping_kwargs or {}),
                                rendering_kwargs=rendering_kwargs, sr_kwargs=dict(sr_kwargs or {}),
                                **synthesis_kwargs)
        synthesis_kwargs.pop("class_name", None)
        self.renderer = ImportanceRenderer()
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=256,
                                          img_channels=PLANE_CHANNELS * 3,
                                          mapping_kwargs=mapping_kwargs, **synthesis_kwargs)
        sr_name = rendering_kwargs["superresolution_module"]
        if sr_name not in SUPERRESOLUTION_MODULES:
            raise ValueError(f"rendering_kwargs['superresolution_module'] must be one of "
                             f"{sorted(SUPERRESOLUTION_MODULES)}, got {sr_name!r}")
        self.superresolution = SUPERRESOLUTION_MODULES[sr_name](
            channels=PLANE_CHANNELS, img_resolution=img_resolution, sr_num_fp16_res=sr_num_fp16_res,
            sr_antialias=rendering_kwargs.get("sr_antialias", True), **(sr_kwargs or {}))
        self.decoder = OSGDecoder(PLANE_CHANNELS, decoder_lr_mul=rendering_kwargs.get("decoder_lr_mul", 1),
                                  decoder_output_dim=PLANE_CHANNELS)
        self.neural_rendering_resolution = 64
        self.rendering_kwargs = rendering_kwargs
        self.aliased_image_raw = aliased_image_raw
        self._last_planes = None
        self.metadata = GeneratorMetadata.from_config(None, rendering_kwargs)

    # ---- EG3D entry points -----------------------------------------------------------------------

    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    @property
    def w_avg(self) -> torch.Tensor:
        """(w_dim,) the mapping network's running average of w."""
        return self.backbone.mapping.w_avg

    def mapping(self, z, c, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        """z (B, z_dim), c (B, 25) -> ws (B, num_ws, w_dim) (EG3D's camera conditioning)."""
        if self.rendering_kwargs.get("c_gen_conditioning_zero", False):
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0),
                                     truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def planes(self, ws, noise_mode: str = "const", **synthesis_kwargs) -> torch.Tensor:
        """ws (B, num_ws, w_dim) -> tri-planes (B, 3, 32, 256, 256)."""
        planes = self.backbone.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)
        return planes.view(len(planes), 3, PLANE_CHANNELS, planes.shape[-2], planes.shape[-1])

    def render_options(self, deterministic: bool = False, **overrides) -> dict:
        """EG3D's rendering kwargs plus our renderer's options (deterministic sampling, injected
        ``stratified_jitter`` / ``importance_u``, masking thresholds, memory budget)."""
        options = dict(self.rendering_kwargs)
        options["deterministic"] = deterministic
        options.update(overrides)
        return options

    def synthesis(self, ws, c, neural_rendering_resolution: int | None = None, update_emas: bool = False,
                  cache_backbone: bool = False, use_cached_backbone: bool = False,
                  noise_mode: str = "const", deterministic: bool = False,
                  render_overrides: dict | None = None, planes: torch.Tensor | None = None,
                  **synthesis_kwargs) -> dict:
        """ws (B, num_ws, w_dim), c (B, 25) camera to render from -> EG3D's output dict:
        ``image`` (B, 3, img_res, img_res), ``image_raw`` (B, 3, nrr, nrr), ``image_depth``
        (B, 1, nrr, nrr); also ``feature_image`` (B, 32, nrr, nrr) and ``weights_sum`` (B, R, 1).

        ``deterministic=True`` is the fixtures' pinned sampling (no stratified jitter,
        u = linspace(0, 1, n)). ``render_overrides`` updates the rendering options for this call.
        ``planes`` (B, 3, 32, H, W): tri-planes the caller computed from ``ws`` (e.g. once per
        item for several cameras); the backbone is not run then.
        """
        if neural_rendering_resolution is None:
            neural_rendering_resolution = self.neural_rendering_resolution
        else:
            self.neural_rendering_resolution = neural_rendering_resolution
        ray_origins, ray_directions = camera_rays(c, neural_rendering_resolution)
        if planes is not None:
            pass
        elif use_cached_backbone and self._last_planes is not None:
            planes = self._last_planes
        else:
            planes = self.planes(ws, noise_mode=noise_mode, update_emas=update_emas, **synthesis_kwargs)
        if cache_backbone:
            self._last_planes = planes
        options = self.render_options(deterministic, **(render_overrides or {}))
        features, depth, weights = self.renderer(planes, self.decoder, ray_origins, ray_directions, options)[:3]
        N, H = len(ws), neural_rendering_resolution
        feature_image = features.permute(0, 2, 1).reshape(N, features.shape[-1], H, H).contiguous()
        depth_image = depth.permute(0, 2, 1).reshape(N, 1, H, H)
        rgb_image = feature_image[:, :3]
        sr_kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "noise_mode"}
        image, aliased = self.superresolution(
            rgb_image, feature_image, ws, return_aliased_rgb=True,
            noise_mode=self.rendering_kwargs.get("superresolution_noise_mode", "none"), **sr_kwargs)
        return {"image": image, "image_raw": aliased if self.aliased_image_raw else rgb_image,
                "image_depth": depth_image, "feature_image": feature_image, "weights_sum": weights}

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                neural_rendering_resolution: int | None = None, **synthesis_kwargs) -> dict:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, neural_rendering_resolution=neural_rendering_resolution,
                              **synthesis_kwargs)

    # ---- point queries (EG3D's sample / sample_mixed, the protocol's sample_density) ---------------

    def sample_mixed(self, coords, dirs, ws, noise_mode: str = "const", **synthesis_kwargs) -> dict:
        """coords (B, M, 3), dirs (B, M, 3), ws -> {'rgb': (B, M, 32), 'sigma': (B, M, 1)}."""
        planes = self.planes(ws, noise_mode=noise_mode, **synthesis_kwargs)
        return self.renderer.run_model(planes, self.decoder, coords, dirs, self.rendering_kwargs)

    def sample(self, coords, dirs, ws_or_z, c=None, truncation_psi: float = 1, truncation_cutoff=None,
               **kw) -> dict:
        """Query the volume at coords (B, M, 3): ``ws`` (B, num_ws, w_dim) as in docs/design.md, or
        EG3D's ``z`` (B, z_dim) with its conditioning camera ``c`` (B, 25), mapped first.
        -> {'rgb': (B, M, 32), 'sigma': (B, M, 1)}."""
        if ws_or_z.dim() == 2:
            if c is None:
                raise ValueError("c (B, 25) is required when sample() is given z (B, z_dim)")
            ws_or_z = self.mapping(ws_or_z, c, truncation_psi=truncation_psi,
                                   truncation_cutoff=truncation_cutoff)
        return self.sample_mixed(coords, dirs, ws_or_z, **kw)

    def sample_density(self, coords, ws, noise_mode: str = "const") -> torch.Tensor:
        """coords (B, M, 3), ws (B, num_ws, w_dim) -> raw density sigma (B, M, 1)."""
        planes = self.planes(ws, noise_mode=noise_mode)
        return self.renderer.render_density(planes, self.decoder, coords,
                                            box_warp=self.rendering_kwargs["box_warp"])

    # ---- the inversion protocol (inversion.protocol.NeRFGenerator) --------------------------------

    def point_query(self, ws, noise_mode: str = "const"):
        """ws (K, num_ws, w_dim) -> query(coords (Kc, M, 3), dirs (Kc, M, 3)) -> {'rgb': (K, M, 32),
        'sigma': (K, M, 1)}, Kc = K or 1 (one point set for all K latents). The planes are
        computed once here and reused by every call of the query."""
        planes = self.planes(ws, noise_mode=noise_mode)
        box_warp = self.rendering_kwargs["box_warp"]

        def query(coords, dirs):
            return self.renderer.sample_mixed(planes, self.decoder, coords, dirs, box_warp)
        return query

    def ray_samples(self, ws, cameras, resolution: int):
        """The renderer's own samples (coarse + importance depths, no gradient) on ``resolution``^2
        rays of each camera (V, 25), for each latent of ws (K, num_ws, w_dim). -> coords
        (K, V*R, S, 3), dirs (K, V*R, S, 3), depths (K, V*R, S, 1), R = resolution**2."""
        with torch.no_grad():
            planes = self.planes(ws)
            origins, dirs = camera_rays(cameras, resolution)
            K = ws.shape[0]
            options = self.render_options(return_samples=True)
            depths = [self.renderer(planes, self.decoder, o.expand(K, -1, -1), d.expand(K, -1, -1),
                                    options)[3]["depths"]
                      for o, d in zip(origins[:, None], dirs[:, None])]
            depths = torch.cat(depths, dim=1)
            o = origins.reshape(1, -1, 1, 3)
            dr = dirs.reshape(1, -1, 1, 3).expand(K, -1, depths.shape[2], -1)
            return o + depths * dr, dr, depths

    @property
    def ray_range(self) -> tuple[float, float]:
        """(near, far) depths of the rays: EG3D's ``ray_start`` / ``ray_end``; with 'auto' (its
        ShapeNet configs), the camera distance -+ the half diagonal of the box."""
        start, end = self.rendering_kwargs.get("ray_start"), self.rendering_kwargs.get("ray_end")
        if start in (None, "auto") or end in (None, "auto"):
            half = self.rendering_kwargs.get("box_warp", 1.0) * math.sqrt(3) / 2
            radius = self.metadata.geometry.radius
            return max(radius - half, 1e-3), radius + half
        return float(start), float(end)

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """The backbone's constant noise inputs (name -> (H, W) buffer), for projection."""
        return {n: b for n, b in self.named_buffers() if "noise_const" in n}

    def params_to_tune(self, subset: str = "all") -> list[nn.Parameter]:
        """Parameters for fine-tuning: 'all', 'backbone', 'decoder', 'superresolution',
        'decoder+superresolution'."""
        groups = {"all": [self], "backbone": [self.backbone], "decoder": [self.decoder],
                  "superresolution": [self.superresolution],
                  "decoder+superresolution": [self.decoder, self.superresolution]}
        if subset not in groups:
            raise ValueError(f"subset must be one of {sorted(groups)}, got {subset!r}")
        return [p for m in groups[subset] for p in m.parameters()]

    def clone(self) -> "TriPlaneGenerator":
        """A frozen deep copy (for regularizers that compare against the original generator)."""
        g = copy.deepcopy(self).eval()
        g.requires_grad_(False)
        return g
