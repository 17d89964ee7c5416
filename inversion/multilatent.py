"""Multi-view and multi-latent inversion (docs/algorithms.md sections 4 and 5).

Multi-view: one latent (W+) for N views (``project`` with several views, per-view weights and the
w_avg regularizer), optionally followed by a PTI or NeRFInvertor stage on all views.

Multi-latent: the frames are sorted by yaw; even positions are *targets*, each with its own W+
latent w_i initialized from the multi-view latent, odd positions are interpolation *checks*. Each
iteration runs three sub-steps, each followed by its own optimizer step (so the loop counts
3 steps per iteration):

1. reconstruction: per target, 0.1 x MSE + perceptual, plus the **latent distance**
   ``latent_weight`` x MSE(w_i, w_shared) (anchored to the multi-view latent);
2. **depth consistency**: a random target camera k; the depth maps of every w_j at k are pulled
   (MSE, ``depth_weight``) toward the mean depth stored at the previous visit of k (a detached
   running buffer; at the first visit, the current detached mean);
3. **interpolation**: each check frame is rendered from the azimuth blend of its two neighbouring
   targets' latents (``AzimuthBlend``) and compared with the frame (``interpolation_weight`` x
   (0.1 x MSE + perceptual)).

An optional tuning stage repeats the sub-steps with the latents frozen and G trainable (Adam 3e-4).
The result's ws are the target latents (N_t, num_ws, w_dim); ``AzimuthBlend(result)`` turns it
into the camera -> latent function used for novel views.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from nerfgan_kernels.render import camera_angles

from .loop import LoopConfig
from .losses import ImageLoss
from .projection import ProjectionConfig, project
from .protocol import trainable_parameters
from .result import Result, add_deltas
from .stage import StagePlan, configure, default_loss, run_stage
from .target import Target

# docs/algorithms.md section 4: W+ from w_avg, peak lr 0.1 with the projector schedule,
# 0.1 x MSE + perceptual per view, + 1.0 x mean((w - w_avg)^2).
MULTIVIEW = ProjectionConfig(mode="wplus", lr=0.1, mse_weight=0.1, w_avg_weight=1.0)


class AzimuthBlend:
    """camera (1, 25) -> ws (1, num_ws, w_dim): the latents of the two targets nearest in yaw on
    either side, blended linearly, t = (yaw - yaw_left) / (yaw_right - yaw_left); outside the
    targets' yaw range, the end latent. yaws (N,) degrees, ws (N, num_ws, w_dim)."""

    def __init__(self, yaws: torch.Tensor, ws: torch.Tensor):
        yaws = torch.as_tensor(yaws, dtype=torch.float32).flatten()
        if ws.dim() != 3 or ws.shape[0] != yaws.numel() or yaws.numel() < 1:
            raise ValueError(f"ws must be (N, num_ws, w_dim) with N = len(yaws) >= 1, got "
                             f"{tuple(ws.shape)} and {yaws.numel()} yaws")
        order = torch.argsort(yaws)
        self.yaws, self.ws = yaws[order], ws[order]

    @classmethod
    def from_result(cls, result: Result) -> "AzimuthBlend":
        return cls(torch.tensor(result.options["target_yaws"]), result.ws)

    def weights(self, yaw: float) -> tuple[int, int, float]:
        """(left index, right index, t) for a yaw in degrees."""
        y = self.yaws
        if len(y) == 1 or yaw <= float(y[0]):
            return 0, 0, 0.0
        if yaw >= float(y[-1]):
            return len(y) - 1, len(y) - 1, 0.0
        right = int(torch.searchsorted(y, torch.tensor([yaw]), right=True)[0])
        left = right - 1
        t = (yaw - float(y[left])) / max(float(y[right] - y[left]), 1e-8)
        return left, right, min(max(t, 0.0), 1.0)

    def blend(self, ws: torch.Tensor, yaw: float) -> torch.Tensor:
        """The blend of ``ws`` (N, num_ws, w_dim) (e.g. the live, differentiable latents, in the
        order of the yaws given to the constructor, sorted) at ``yaw`` -> (1, num_ws, w_dim)."""
        left, right, t = self.weights(yaw)
        return ws[left:left + 1] * (1 - t) + ws[right:right + 1] * t

    def __call__(self, camera: torch.Tensor) -> torch.Tensor:
        yaw, _ = camera_angles(camera.reshape(-1, 25)[:1])
        return self.blend(self.ws, float(yaw[0]))


def split_frames(cameras: torch.Tensor) -> tuple[list[int], list[int]]:
    """Sort frames by yaw; even positions are targets, odd ones interpolation checks.
    cameras (F, 25) -> (target indices, check indices) into the input order. One or two frames:
    all targets."""
    yaw, _ = camera_angles(cameras)
    order = torch.argsort(yaw).tolist()
    if len(order) <= 2:
        return order, []
    return order[0::2], order[1::2]


def multiview_inversion(G, target: Target, config: ProjectionConfig | None = None, *,
                        loss: ImageLoss | None = None, synthesis_kwargs: dict | None = None,
                        loop: LoopConfig | None = None, seed: int = 0, **options) -> Result:
    """One latent for all of ``target``'s views (docs/algorithms.md section 4): ``project`` with
    the ``MULTIVIEW`` config (keyword ``options`` replace its fields, e.g. ``view_weights``).
    Returns Result('multiview', ws (1, num_ws, w_dim), ...)."""
    return project(G, target, configure(ProjectionConfig, config or MULTIVIEW, options), loss=loss,
                   synthesis_kwargs=synthesis_kwargs, loop=loop, seed=seed, method="multiview")


@dataclass(frozen=True)
class MultiLatentConfig:
    """iterations (each = one optimizer step per sub-step kind), lr: the latent stage (Adam);
    tuning_iterations (0: none), tuning_lr: the optional G stage; latent_weight / depth_weight /
    interpolation_weight: the regularizers (0 turns one off); mse_weight / perceptual_weight /
    perceptual: the default loss; multiview_steps: the multi-view stage giving the shared latent."""

    iterations: int = 100
    lr: float = 0.01
    tuning_iterations: int = 0
    tuning_lr: float = 3e-4
    latent_weight: float = 1.0
    depth_weight: float = 1.0
    interpolation_weight: float = 1.0
    mse_weight: float = 0.1
    perceptual_weight: float = 1.0
    perceptual: object = "lpips-vgg"
    multiview_steps: int = 100


def multilatent_inversion(G, target: Target, config: MultiLatentConfig | None = None, *,
                          shared_ws: torch.Tensor | None = None, loss: ImageLoss | None = None,
                          multiview_options: dict | None = None, synthesis_kwargs: dict | None = None,
                          loop: LoopConfig | None = None, tuning_loop: LoopConfig | None = None,
                          seed: int = 0, **options) -> Result:
    """One W+ latent per target frame with the three regularizers (module docstring).

    target: F frames (F >= 1) with cameras; split by ``split_frames``. config: a
    ``MultiLatentConfig``; keyword ``options`` replace its fields. shared_ws (1, num_ws, w_dim):
    the multi-view latent (None: ``multiview_inversion`` on the target frames with
    ``multiview_steps`` and ``multiview_options``). loop / tuning_loop: the two stages' loop
    settings. Returns Result('multilatent', ws (N_t, num_ws, w_dim) sorted by yaw, delta of G,
    timings, metrics, logs, options incl. 'target_yaws', 'targets', 'checks')."""
    cfg = configure(MultiLatentConfig, config, options)
    t_start = time.perf_counter()
    loss = loss or default_loss(cfg)
    synthesis_kwargs = dict(synthesis_kwargs or {})
    targets, checks = split_frames(target.cameras)
    yaws, _ = camera_angles(target.cameras)
    targets = sorted(targets, key=lambda i: float(yaws[i]))
    t_cams, t_imgs = target.cameras[targets], target.images[targets]
    c_cams, c_imgs = target.cameras[checks], target.images[checks]
    progress = loop.progress if loop else True
    timings, mv_delta = {}, {}
    if shared_ws is None:
        mv = multiview_inversion(G, Target(t_imgs, t_cams), steps=cfg.multiview_steps, loss=loss,
                                 synthesis_kwargs=synthesis_kwargs, **(multiview_options or {}),
                                 loop=LoopConfig(steps=0, progress=progress), seed=seed)
        shared_ws, timings["multiview"], mv_delta = mv.ws, mv.timings["projection"], mv.delta
    shared_ws = shared_ws.detach()
    latents = shared_ws.repeat(len(targets), 1, 1).clone().requires_grad_(True)
    step = _sub_steps(G, cfg, loss, synthesis_kwargs, latents, shared_ws, yaws, targets, checks,
                      t_cams, t_imgs, c_cams, c_imgs)
    n_kinds = step.n_kinds
    extra = {"target_yaws": [float(yaws[i]) for i in targets], "targets": targets, "checks": checks}

    def latent_plan(G, _target, cfg, ctx):
        G.requires_grad_(False)
        optimizer = torch.optim.Adam([latents], lr=cfg.lr, betas=(0.9, 0.999))
        return StagePlan(n_kinds * cfg.iterations, {"latents": latents}, optimizer, step,
                         latent=lambda state: latents, finish=lambda state: ({}, extra))

    def tuning_plan(G, _target, cfg, ctx):
        params, tensors = trainable_parameters(G, "all")
        return StagePlan(n_kinds * cfg.tuning_iterations, tensors, torch.optim.Adam(params, lr=cfg.tuning_lr),
                         step, latent=lambda state: latents)

    frames = Target(t_imgs, t_cams)
    common = dict(loss=loss, synthesis_kwargs=synthesis_kwargs, method="multilatent")
    result = run_stage("multilatent", G, frames, cfg, latent_plan, loop=loop, seed=seed, **common)
    if cfg.tuning_iterations:
        tuning_loop = tuning_loop or LoopConfig(steps=0, progress=progress)
        tuned = run_stage("tuning", G, frames, cfg, tuning_plan, loop=tuning_loop, seed=seed + 1,
                          description="multilatent-tune", **common)
        result = dataclasses.replace(result, delta=tuned.delta, metrics=tuned.metrics,
                                     logs=result.logs + tuned.logs,
                                     timings={**result.timings, **tuned.timings})
    result.delta = add_deltas(mv_delta, result.delta)  # the multi-view stage's noise buffers
    result.timings.update(timings)
    result.timings["multilatent"] = time.perf_counter() - t_start
    return result


def _sub_steps(G, cfg: MultiLatentConfig, loss, synthesis_kwargs, latents, shared_ws, yaws, targets,
               checks, t_cams, t_imgs, c_cams, c_imgs):
    """The step function of both stages: step -> one of the sub-steps (reconstruction, depth,
    interpolation) on the live latents; its ``n_kinds`` attribute is the number of kinds."""
    blend = AzimuthBlend(yaws[targets], torch.zeros(len(targets), 1, 1))
    depth_buffer: dict[int, torch.Tensor] = {}
    n_t = len(targets)
    kinds = ["reconstruction"]
    if cfg.depth_weight and n_t >= 2:
        kinds.append("depth")
    if cfg.interpolation_weight and checks:
        kinds.append("interpolation")

    def sub_step(step: int):
        ws = latents
        kind = kinds[step % len(kinds)]
        if kind == "reconstruction":  # + latent distance
            out = G.synthesis(ws, t_cams, **synthesis_kwargs)["image"]
            total, terms = loss(out, t_imgs)
            total = total * n_t  # summed over targets
            if cfg.latent_weight:
                dist = (ws - shared_ws).square().mean()
                total = total + cfg.latent_weight * dist
                terms["latent_distance"] = dist.item()
            return total, terms
        if kind == "depth":  # depth consistency at a random target camera
            k = int(torch.randint(n_t, ()))
            depth = G.synthesis(ws, t_cams[k:k + 1].expand(n_t, -1), **synthesis_kwargs)["image_depth"]
            previous = depth_buffer.get(k, depth.detach().mean(0, keepdim=True))
            depth_buffer[k] = depth.detach().mean(0, keepdim=True)
            term = (depth - previous).square().mean()
            return cfg.depth_weight * term, {"depth_consistency": term.item()}
        blended = torch.cat([blend.blend(ws, float(yaws[i])) for i in checks])
        out = G.synthesis(blended, c_cams, **synthesis_kwargs)["image"]
        term, terms = loss(out, c_imgs)
        return cfg.interpolation_weight * term * len(checks), {f"interp_{k}": v for k, v in terms.items()}

    sub_step.n_kinds = len(kinds)
    return sub_step
