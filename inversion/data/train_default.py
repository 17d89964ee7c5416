"""Train the small embedded default generator on procedural heads (an auto-decoder).

    python -m inversion.data.train_default --out DIR [--minutes M] [--steps N] [--resume]
        [--preset default|tiny] [--heads H] [--expressions E ...] [--views V] [--nrr N] ...

What it trains: a scaled-down EG3D ``TriPlaneGenerator`` (``DEFAULT_GENERATOR_KWARGS``: z 64,
w 512, 2 mapping layers, backbone channel_base 4096 / channel_max 128, 24+24 samples per ray,
white background, 128x128 output via ``SuperresolutionHybrid2X``, camera conditioning off;
neural rendering at ``--nrr``, 32 by default; the shipped generator was resumed at 64) on a fixed set of
procedural heads (``inversion.data.heads``): ``heads`` seeds x ``expressions`` expression values;
each (head, expression) pair is one *training item* with ``views`` cameras (yaw within +-50
degrees, pitch within +-20 degrees, the frontal view first), rendered once and cached in
``DIR/views.pt``.

How (no adversarial term): every item i owns a learnable latent ``w_i`` (w_dim,) used for all
num_ws layers (W, not W+). One step takes ``items_per_step`` random items, computes each one's
tri-planes once, renders ``views_per_item`` of its cached views, and minimizes

    MSE(image_raw, target at nrr) + MSE(image, target at 128)
    + depth_weight * L1(image_depth, target depth) on fully covered foreground pixels
    + mask_weight * MSE(weights_sum, foreground coverage)
    + prior_weight * mean |w_i - mean_j w_j|^2                      (latent prior)
    + mapping_weight * MSE(mapping(z_i), w_i.detach())              (mapping fitted to the codes)

with Adam (networks ``lr``, latents ``latent_lr``). z_i is fixed: ``item_z(i)`` (randn from a
generator seeded with i), so after training ``G.mapping(z_i, c) ~ w_i`` and ``w_avg`` is set to the
mean of the mapped codes: the mapping network sends normal z near the heads' latent set.

With ``--ema-half-life H`` (steps) the trainer also keeps an exponential moving average of the
network weights and the codes (EG3D's ``G_ema``), checkpointed with the rest; the saved generator is
then the average, which smooths out the noise of these small batches (a resumed run without one in
its checkpoint starts it from the current weights).

Reproducible: everything is seeded (``--seed``); with ``--steps`` the result depends only on the
arguments (``--minutes`` stops early on wall time). A checkpoint (model, latents, optimizer, step,
RNG states, loss history) is written to ``DIR/checkpoint.pt`` every ``--checkpoint-every`` steps
and at the end; ``--resume`` continues from it. The final generator is saved with
``save_generator`` to ``DIR/generator.safetensors`` (+ ``generator.json`` with a training summary).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from nerfgan_kernels.models import build_generator, save_generator
from nerfgan_kernels.render import look_at_camera
from nerfgan_kernels.render.cameras import FFHQ

from ..evaluation import downsample_depth
from .heads import PROCEDURAL_HEADS_ALIGNMENT, render_head, sample_head

DEFAULT_GENERATOR_KWARGS = {
    "class_name": "training.triplane.TriPlaneGenerator",
    "z_dim": 64, "w_dim": 512, "c_dim": 25, "img_resolution": 128, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "channel_base": 4096, "channel_max": 128, "num_fp16_res": 0, "conv_clamp": None,
    "fused_modconv_default": "inference_only", "sr_num_fp16_res": 0,
    "sr_kwargs": {"channel_base": 4096, "channel_max": 128, "fused_modconv_default": "inference_only"},
    "rendering_kwargs": {
        "image_resolution": 128, "disparity_space_sampling": False, "clamp_mode": "softplus",
        "superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
        "c_gen_conditioning_zero": True, "c_scale": 1.0, "superresolution_noise_mode": "none",
        "density_reg": 0.25, "density_reg_p_dist": 0.004, "reg_type": "l1", "decoder_lr_mul": 1.0,
        "sr_antialias": True, "depth_resolution": 24, "depth_resolution_importance": 24,
        "ray_start": 2.25, "ray_end": 3.3, "box_warp": 1, "white_back": True,
        "avg_camera_radius": FFHQ.radius, "avg_camera_pivot": list(FFHQ.pivot),
    },
}

# The trainer's architecture presets, as overrides of DEFAULT_GENERATOR_KWARGS: "default" is the
# shipped model; "tiny" is the smoke-run preset (the same architecture family, small and fast: a
# whole training run in about a minute, to check a setup before a long run).
# (SuperresolutionHybrid2X fixes the output at 128; use nrr 32 with it.)
PRESETS = {
    "default": {},
    "tiny": {
        "channel_base": 512, "channel_max": 32,
        "sr_kwargs": {"channel_base": 512, "channel_max": 32, "fused_modconv_default": "inference_only"},
        "rendering_kwargs": {"depth_resolution": 12, "depth_resolution_importance": 12},
    },
}


@dataclass
class TrainConfig:
    """Training settings (all saved in the checkpoint and the generator's JSON)."""
    preset: str = "default"          # a key of PRESETS (architecture)
    heads: int = 32                  # head seeds 0 .. heads-1
    expressions: tuple = (0.0, 0.6)  # expression values per head
    views: int = 8                   # cached views per item
    items_per_step: int = 2          # distinct items per step (one backbone pass each)
    views_per_item: int = 2          # views rendered per item per step (sharing its tri-planes)
    nrr: int = 32                    # neural rendering resolution (training and shipped)
    lr: float = 2e-3                 # networks (Adam)
    latent_lr: float = 1e-2          # per-item codes
    mapping_lr: float = 1e-3
    depth_weight: float = 1.0
    mask_weight: float = 0.5
    prior_weight: float = 1e-3
    mapping_weight: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    mapping_fit_steps: int = 2000    # post-hoc mapping fit at the end (``fit_mapping``)
    max_yaw: float = 50.0            # degrees
    max_pitch: float = 20.0          # degrees of EG3D's v (an elevation of +-13.0), see item_cameras
    ema_half_life: float = 0.0       # steps; > 0 keeps an EMA of the weights and codes (shipped)

    def generator_kwargs(self) -> dict:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        kwargs = json.loads(json.dumps(DEFAULT_GENERATOR_KWARGS))
        for k, v in PRESETS[self.preset].items():
            if k == "rendering_kwargs":
                kwargs[k].update(v)
            else:
                kwargs[k] = v
        return kwargs

    def check(self) -> None:
        for name in ("heads", "views", "items_per_step", "views_per_item", "nrr", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not self.ema_half_life >= 0:
            raise ValueError(f"ema_half_life must be >= 0 (steps; 0 turns the EMA off), got {self.ema_half_life!r}")
        if not self.expressions or not all(0 <= e <= 1 for e in self.expressions):
            raise ValueError(f"expressions must be non-empty values in [0, 1], got {self.expressions!r}")
        if self.views_per_item > self.views:
            raise ValueError(f"views_per_item ({self.views_per_item}) must be <= views ({self.views})")
        if self.items_per_step > self.heads * len(self.expressions):
            raise ValueError(f"items_per_step ({self.items_per_step}) must be <= the number of items "
                             f"({self.heads * len(self.expressions)})")
        self.generator_kwargs()


def item_z(index: int, z_dim: int) -> torch.Tensor:
    """The fixed latent z (z_dim,) of training item ``index`` (randn seeded with the index)."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(1_000_003 + index))


def training_items(cfg: TrainConfig) -> list[tuple[int, float]]:
    """[(head seed, expression)] in item order: heads outer, expressions inner."""
    return [(s, float(e)) for s in range(cfg.heads) for e in cfg.expressions]


def item_cameras(index: int, cfg: TrainConfig) -> torch.Tensor:
    """(views, 25) cameras of item ``index``: frontal first, then seeded random views, drawn in
    EG3D's parameters (``look_at_camera``): h = pi/2 + yaw and v = pi/2 + a v offset, both
    uniform in +-max_yaw / +-max_pitch degrees. The v offset is not an elevation: +-20 degrees
    of v is an elevation of -+13.0 degrees (``cameras.eg3d_to_angles``)."""
    r = random.Random(7_000_001 + index)
    yaw = [0.0] + [r.uniform(-cfg.max_yaw, cfg.max_yaw) for _ in range(cfg.views - 1)]
    v_offset = [0.0] + [r.uniform(-cfg.max_pitch, cfg.max_pitch) for _ in range(cfg.views - 1)]
    h = math.pi / 2 + torch.deg2rad(torch.tensor(yaw))
    v = math.pi / 2 + torch.deg2rad(torch.tensor(v_offset))
    return look_at_camera(h, v)


# Cameras at which the default generator is scored on its training heads, not among any item's
# training views (``item_cameras``), in ``item_cameras``' parameters: (yaw, v offset) in degrees.
# A v offset of +-8 degrees is an elevation of -+5.1 degrees: the views are at yaw -40..40,
# elevation -+5.1.
HELD_OUT_VIEWS = ((-40.0, 8.0), (-25.0, -8.0), (-8.0, 8.0), (8.0, -8.0), (25.0, 8.0), (40.0, -8.0))


def held_out_cameras() -> torch.Tensor:
    """(6, 25) cameras of ``HELD_OUT_VIEWS``."""
    yaw = torch.tensor([y for y, _ in HELD_OUT_VIEWS])
    v_offset = torch.tensor([p for _, p in HELD_OUT_VIEWS])
    return look_at_camera(math.pi / 2 + torch.deg2rad(yaw), math.pi / 2 + torch.deg2rad(v_offset))


def build_views(cfg: TrainConfig, img_res: int, progress: bool = True) -> dict:
    """Render every item's views once. Returns dict of tensors with leading dims (items, views):
    ``c`` (I, V, 25), ``rgb`` (I, V, 3, img, img) float16 in [-1, 1] (white background),
    ``rgb_lo`` (I, V, 3, nrr, nrr), ``depth_lo`` (I, V, 1, nrr, nrr) mean depth over the covered
    part of each low-res pixel, ``mask_lo`` (I, V, 1, nrr, nrr) coverage in [0, 1]."""
    items = training_items(cfg)
    out = {k: [] for k in ("c", "rgb", "rgb_lo", "depth_lo", "mask_lo")}
    for i, (seed, expr) in enumerate(tqdm(items, desc="rendering views", disable=not progress)):
        c = item_cameras(i, cfg)
        r = render_head(sample_head(seed, expression=expr), c, img_res)
        k = img_res // cfg.nrr if img_res % cfg.nrr == 0 else None
        if k is None:
            raise ValueError(f"nrr ({cfg.nrr}) must divide the image resolution ({img_res})")
        depth_lo, mask_lo = downsample_depth(r["depth"], r["mask"], (cfg.nrr, cfg.nrr))
        out["c"].append(c)
        out["rgb"].append(r["rgb"].half())
        out["rgb_lo"].append(F.avg_pool2d(r["rgb"], k))
        out["depth_lo"].append(torch.where(mask_lo > 0, depth_lo, r["depth"].max()))
        out["mask_lo"].append(mask_lo)
    return {k: torch.stack(v) for k, v in out.items()}


class Trainer:
    """Holds the generator, latents, optimizer and data; ``step()`` runs one optimization step."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, progress: bool = True):
        cfg.check()
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        kwargs = cfg.generator_kwargs()
        self.G = build_generator(kwargs, cfg.nrr).train()
        self.img_res = kwargs["img_resolution"]
        views_path = self.out_dir / "views.pt"
        meta = {"items": training_items(cfg), "views": cfg.views, "nrr": cfg.nrr, "img": self.img_res,
                "max_yaw": cfg.max_yaw, "max_pitch": cfg.max_pitch}
        cached = torch.load(views_path, weights_only=True) if views_path.exists() else None
        if cached is not None and cached.get("meta") == json.dumps(meta):
            self.data = cached["data"]
        else:
            self.data = build_views(cfg, self.img_res, progress)
            torch.save({"meta": json.dumps(meta), "data": self.data}, views_path)
        n_items = len(meta["items"])
        self.z = torch.stack([item_z(i, self.G.z_dim) for i in range(n_items)])
        with torch.no_grad():
            w0 = self.G.mapping(self.z, torch.zeros(n_items, 25))[:, 0]
        self.latents = torch.nn.Parameter(w0.clone())
        mapping = list(self.G.backbone.mapping.parameters())
        mapping_ids = {id(p) for p in mapping}
        nets = [p for p in self.G.parameters() if id(p) not in mapping_ids]
        self.opt = torch.optim.Adam([
            {"params": nets, "lr": cfg.lr},
            {"params": [self.latents], "lr": cfg.latent_lr},
            {"params": mapping, "lr": cfg.mapping_lr},
        ], betas=(0.9, 0.99))
        self.ema = self.new_ema() if cfg.ema_half_life > 0 else None
        self.step_count = 0
        self.train_seconds = 0.0  # wall time of all runs that led to this state (resumes add up)
        self.runs: list[dict] = []  # one record per (resumed) run: steps, learning rates, seconds
        self.history: list[dict] = []
        self.rng = torch.Generator().manual_seed(cfg.seed + 17)  # batch draws

    # ---- one step --------------------------------------------------------------------------------

    def losses(self, items: torch.Tensor, views: torch.Tensor) -> dict:
        """Loss terms for ``items`` (K,) int64 and their ``views`` (K, V) int64: the tri-planes of
        each item are computed once and rendered from its V cameras."""
        cfg, d = self.cfg, self.data
        K, V = views.shape
        w_items = self.latents[items]                                   # (K, w_dim)
        planes = self.G.planes(w_items[:, None].expand(-1, self.G.num_ws, -1))
        items, views = items.repeat_interleave(V), views.reshape(-1)    # (K*V,)
        c = d["c"][items, views]
        w = self.latents[items]
        ws = w[:, None].expand(-1, self.G.num_ws, -1)
        out = self.G.synthesis(ws, c, neural_rendering_resolution=cfg.nrr,
                               planes=planes.repeat_interleave(V, dim=0))
        rgb, rgb_lo = d["rgb"][items, views].float(), d["rgb_lo"][items, views]
        depth_lo, mask_lo = d["depth_lo"][items, views], d["mask_lo"][items, views]
        full = (mask_lo > 0.999).float()
        terms = {
            "raw": F.mse_loss(out["image_raw"], rgb_lo),
            "sr": F.mse_loss(out["image"], rgb),
            "depth": (full * (out["image_depth"] - depth_lo).abs()).sum() / full.sum().clamp(min=1),
            "mask": F.mse_loss(out["weights_sum"].reshape(mask_lo.shape), mask_lo),
            "prior": (self.latents - self.latents.mean(0, keepdim=True)).pow(2).mean(),
        }
        w_mapped = self.G.mapping(self.z[items], c)[:, 0]
        terms["mapping"] = F.mse_loss(w_mapped, w.detach())
        terms["total"] = (terms["raw"] + terms["sr"] + cfg.depth_weight * terms["depth"]
                          + cfg.mask_weight * terms["mask"] + cfg.prior_weight * terms["prior"]
                          + cfg.mapping_weight * terms["mapping"])
        return terms

    # ---- EMA of the weights (EG3D's G_ema) ------------------------------------------------------

    def new_ema(self) -> dict:
        """A copy of the current state: {'G': G's state_dict tensors, 'latents': (items, w_dim)}."""
        return {"G": {k: v.detach().clone() for k, v in self.G.state_dict().items()},
                "latents": self.latents.detach().clone()}

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- beta * ema + (1 - beta) * current, beta = 0.5 ** (1 / ema_half_life); buffers that
        are not floating point are copied."""
        beta = 0.5 ** (1.0 / self.cfg.ema_half_life)
        current = self.G.state_dict()
        for k, v in self.ema["G"].items():
            if v.is_floating_point():
                v.lerp_(current[k], 1.0 - beta)
            else:
                v.copy_(current[k])
        self.ema["latents"].lerp_(self.latents.detach(), 1.0 - beta)

    def step(self) -> dict:
        n_items, n_views = self.data["c"].shape[:2]
        K, V = self.cfg.items_per_step, self.cfg.views_per_item
        items = torch.randperm(n_items, generator=self.rng)[:K]
        views = torch.stack([torch.randperm(n_views, generator=self.rng)[:V] for _ in range(K)])
        terms = self.losses(items, views)
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.opt.step()
        if self.ema is not None:
            self.update_ema()
        self.step_count += 1
        record = {k: float(v.detach()) for k, v in terms.items()}
        record["step"] = self.step_count
        self.history.append(record)
        return record

    # ---- checkpoints -----------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def save_checkpoint(self) -> Path:
        state = {"config": json.dumps(dataclasses.asdict(self.cfg)), "step": self.step_count,
                 "G": self.G.state_dict(), "latents": self.latents.detach().clone(),
                 "opt": self.opt.state_dict(), "history": json.dumps(self.history),
                 "train_seconds": self.train_seconds, "runs": json.dumps(self.runs),
                 "torch_rng": torch.get_rng_state(), "batch_rng": self.rng.get_state(),
                 "python_rng": json.dumps(random.getstate())}
        if self.ema is not None:
            state["ema_G"], state["ema_latents"] = self.ema["G"], self.ema["latents"]
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)
        return self.checkpoint_path

    def load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, weights_only=True)
        saved = json.loads(state["config"])
        mine = json.loads(json.dumps(dataclasses.asdict(self.cfg)))
        # nrr and views may change between runs: a later stage can train at a higher neural
        # rendering resolution (as EG3D raises it late in training) or on more cameras per item
        # (the first ``views`` cameras of a larger set are not the same cameras: see
        # ``item_cameras``); the views cache follows them.
        for key in ("preset", "heads", "expressions", "seed", "max_yaw", "max_pitch"):
            if saved[key] != mine[key]:
                raise ValueError(f"--resume: the checkpoint was trained with {key}={saved[key]!r}, "
                                 f"this run has {key}={mine[key]!r}")
        self.G.load_state_dict(state["G"])
        with torch.no_grad():
            self.latents.copy_(state["latents"])
        self.opt.load_state_dict(state["opt"])
        if self.ema is not None:  # a checkpoint without an EMA starts one from its weights
            self.ema = ({"G": state["ema_G"], "latents": state["ema_latents"]} if "ema_G" in state
                        else self.new_ema())
        for group, lr in zip(self.opt.param_groups, (self.cfg.lr, self.cfg.latent_lr, self.cfg.mapping_lr)):
            group["lr"] = lr  # a resumed run may lower the learning rates (a second, fine stage)
        self.runs = json.loads(state.get("runs", "[]"))
        self.step_count = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.history = json.loads(state["history"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.set_state(state["batch_rng"])
        py = json.loads(state["python_rng"])
        random.setstate((py[0], tuple(py[1]), py[2]))

    # ---- the end ---------------------------------------------------------------------------------

    def finalize(self) -> Path:
        """Fit the mapping network to the codes (``fit_mapping``), set w_avg to the mean mapped
        code and save the generator (float16) with a training summary. With an EMA, the EMA
        weights and codes are what is saved (the training state stays in the checkpoint)."""
        G, codes = self.G, self.latents.detach()
        if self.ema is not None:
            G = build_generator(self.cfg.generator_kwargs(), self.cfg.nrr)
            G.load_state_dict(self.ema["G"])
            codes = self.ema["latents"]
        fit_mapping(G, self.z, codes, steps=self.cfg.mapping_fit_steps)
        with torch.no_grad():
            mapped = G.mapping(self.z, torch.zeros(len(self.z), 25))[:, 0]
            G.backbone.mapping.w_avg.copy_(mapped.mean(0))
            map_err = float((mapped - codes).pow(2).mean() / codes.pow(2).mean())
        last = self.history[-50:]
        mean = {k: sum(h[k] for h in last) / len(last) for k in last[0] if k != "step"} if last else {}
        summary = {
            "what": "auto-decoder trained on procedural heads (inversion.data.heads); no adversarial term",
            "command": "python -m inversion.data.train_default",
            "config": dataclasses.asdict(self.cfg), "steps": self.step_count,
            "train_seconds": round(self.train_seconds, 1), "runs": self.runs,
            "items": training_items(self.cfg),
            "item_z": "randn(z_dim) from torch.Generator().manual_seed(1000003 + item index)",
            "final_losses_mean_last_50": mean,
            "mapping_relative_mse": map_err,  # |mapping(z_i) - w_i|^2 / |w_i|^2
        }
        G.eval()
        # float16 storage halves the shipped file; the model runs in float32 after loading.
        return save_generator(G, self.out_dir / "generator.safetensors",
                              extra={"training": summary, "alignment": PROCEDURAL_HEADS_ALIGNMENT}, dtype=torch.float16)


def fit_mapping(G, z: torch.Tensor, codes: torch.Tensor, steps: int = 2000, lr: float = 1.0) -> float:
    """Fit G's mapping network so that mapping(z_i) = w_i: Adam on MSE, rendering-free (seconds).
    EG3D's mapping layers learn at lr_multiplier 0.01, so during the joint training the mapping
    stays far from the codes (relative MSE ~0.5 after an hour); this post-hoc fit brings it to
    ~1e-2 or below. z (N, z_dim), codes (N, w_dim). Returns the relative MSE."""
    params = list(G.backbone.mapping.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    c = torch.zeros(len(z), 25)
    with torch.enable_grad():
        for _ in range(steps):
            loss = (G.mapping(z, c)[:, 0] - codes).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for p in params:
        p.grad = None
    with torch.no_grad():
        return float((G.mapping(z, c)[:, 0] - codes).pow(2).mean() / codes.pow(2).mean())


def parse_args(argv=None):
    d = TrainConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (checkpoint, views cache, generator)")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    ap.add_argument("--steps", type=int, default=None, help="stop at this step count (total)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    ap.add_argument("--no-progress", action="store_true")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "expressions":
            ap.add_argument(flag, type=float, nargs="+", default=list(d.expressions))
        else:
            ap.add_argument(flag, type=type(getattr(d, f.name)), default=getattr(d, f.name))
    args = ap.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    cfg.expressions = tuple(cfg.expressions)
    return args, cfg


def main(argv=None) -> dict:
    """Run training; returns {'generator': path, 'steps', 'seconds_per_step', 'history'}."""
    args, cfg = parse_args(argv)
    if args.minutes is None and args.steps is None:
        raise ValueError("give --minutes and/or --steps (how long to train)")
    if args.steps is not None and args.steps < 0:
        raise ValueError(f"steps must be >= 0, got {args.steps!r}")
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"minutes must be positive, got {args.minutes!r}")
    trainer = Trainer(cfg, Path(args.out), progress=not args.no_progress)
    if args.resume:
        if not trainer.checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {trainer.checkpoint_path}")
        trainer.load_checkpoint()
    start_step, t0 = trainer.step_count, time.perf_counter()
    seconds_before = trainer.train_seconds
    trainer.runs.append({"from_step": start_step, "to_step": start_step, "nrr": cfg.nrr, "views": cfg.views,
                         "lr": cfg.lr,
                         "latent_lr": cfg.latent_lr, "mapping_lr": cfg.mapping_lr, "seconds": 0.0,
                         **({"ema_half_life": cfg.ema_half_life} if cfg.ema_half_life > 0 else {})})
    deadline = t0 + args.minutes * 60 if args.minutes is not None else math.inf
    total = args.steps if args.steps is not None else None
    bar = tqdm(total=total, initial=start_step, desc="training", disable=args.no_progress)
    while (args.steps is None or trainer.step_count < args.steps) and time.perf_counter() < deadline:
        rec = trainer.step()
        bar.update(1)
        bar.set_postfix(loss=f"{rec['total']:.4f}", raw=f"{rec['raw']:.4f}", depth=f"{rec['depth']:.3f}")
        trainer.train_seconds = seconds_before + time.perf_counter() - t0
        trainer.runs[-1].update(to_step=trainer.step_count, seconds=round(time.perf_counter() - t0, 1))
        if trainer.step_count % cfg.checkpoint_every == 0:
            trainer.save_checkpoint()
    bar.close()
    if trainer.runs[-1]["to_step"] == start_step:  # nothing trained (e.g. only re-finalizing)
        trainer.runs.pop()
    seconds = time.perf_counter() - t0
    trainer.train_seconds = seconds_before + seconds
    trainer.save_checkpoint()
    path = trainer.finalize()
    done = trainer.step_count - start_step
    per_step = seconds / done if done else float("nan")
    print(f"{done} steps in {seconds:.1f} s ({per_step:.3f} s/step); generator: {path}")
    return {"generator": path, "steps": trainer.step_count, "seconds_per_step": per_step,
            "history": trainer.history}


if __name__ == "__main__":
    main()
