"""Image losses and metrics: LPIPS (the ``lpips`` package), MSE, a fast SSIM for the loss, PSNR, an
identity hook.

LPIPS needs the ImageNet backbone weights in torch's hub cache; ``load_lpips`` checks for them
before ``lpips`` would try to download, and says exactly which file to put where.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def backbone_weights_path(net: str) -> Path:
    """Where torchvision (and so ``lpips``) looks for ``net``'s ImageNet weights."""
    if net not in BACKBONE_FILES:
        raise ValueError(f"net must be one of {sorted(BACKBONE_FILES)}, got {net!r}")
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


class LPIPSWeightsMissing(FileNotFoundError):
    pass


OFFLINE_ENV = "NERFGAN_OFFLINE"
FETCH_TIMEOUT_S = 10.0


def offline() -> bool:
    """True when nothing may be downloaded (``NERFGAN_OFFLINE=1``; ``--offline`` sets it; CI and the
    tests set it)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def fetch_backbone(net: str, timeout: float = FETCH_TIMEOUT_S) -> Path:
    """Download ``net``'s ImageNet weights the way torchvision does (its weights API, into
    ``$TORCH_HOME/hub/checkpoints``), giving up after ``timeout`` seconds without an answer."""
    import socket
    from torchvision import models
    weights = {"vgg": models.VGG16_Weights.IMAGENET1K_V1, "alex": models.AlexNet_Weights.IMAGENET1K_V1}[net]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    finally:
        socket.setdefaulttimeout(previous)
    return backbone_weights_path(net)


def load_lpips(net: str = "vgg", pnet_rand: bool = False) -> torch.nn.Module:
    """``lpips.LPIPS(net=net)`` in eval mode, frozen, with its ImageNet backbone from torch's hub
    cache, fetched there first when it is absent (``fetch_backbone``) unless ``offline()``.

    ``pnet_rand=True`` (tests only) uses a randomly initialised backbone with the shipped linear
    heads. Raises ``LPIPSWeightsMissing`` naming the file and folder when the backbone is absent
    and cannot be fetched.
    """
    import lpips
    if not pnet_rand:
        path = backbone_weights_path(net)
        if not path.exists():
            reason = f"{OFFLINE_ENV}=1 forbids downloading it"
            if not offline():
                try:
                    fetch_backbone(net)
                    reason = None
                except Exception as e:  # noqa: BLE001 - no network, a proxy, a bad hash: all say the same
                    reason = f"fetching it failed ({type(e).__name__}: {e})"
            if reason is not None or not path.exists():
                raise LPIPSWeightsMissing(
                    f"LPIPS({net}) needs the ImageNet backbone weights {path.name}; {reason}: put "
                    f"{path.name} at {path} (folder {path.parent}; set TORCH_HOME to change it), or "
                    f"pass perceptual='mse+ssim' to use the MSE + SSIM fallback.")
    model = lpips.LPIPS(net=net, pnet_rand=pnet_rand, verbose=False)
    model.eval().requires_grad_(False)
    return model


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.float(), b.float()).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(4.0 / mse)).item()


def fast_ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """The training loss's fast SSIM: mean SSIM of (B, C, H, W) images in [-1, 1] with a uniform
    ``window`` (differentiable). Reported scores use the standard SSIM (``evaluation.ssim``:
    11-pixel Gaussian window, sigma 1.5), as papers do."""
    a, b = (a + 1) / 2, (b + 1) / 2
    pad = window // 2
    mu = lambda x: F.avg_pool2d(x, window, 1, pad, count_include_pad=False)
    ma, mb = mu(a), mu(b)
    va, vb, cov = mu(a * a) - ma ** 2, mu(b * b) - mb ** 2, mu(a * b) - ma * mb
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return s.mean()


class ImageLoss(torch.nn.Module):
    """``mse_weight * MSE + perceptual_weight * P (+ identity_weight * identity)`` between images
    (B, 3, H, W) in [-1, 1].

    Args:
        perceptual: "lpips-vgg" (default, optimization loss of docs/design.md), "lpips-alex" (PTI's
            early-stop metric), "mse+ssim" (fallback without ImageNet weights: P = 1 - SSIM), "none",
            or an ``nn.Module`` mapping two image batches to distances (e.g. ``LPIPS(pnet_rand=True)``).
        perceptual_resolution: images larger than this are area-downsampled before P (256, as the
            projectors do).
        identity: optional callable (images, targets) -> (B,) identity distance (user-supplied model).
    """

    def __init__(self, mse_weight: float = 1.0, perceptual_weight: float = 1.0, perceptual="lpips-vgg",
                 perceptual_resolution: int = 256, identity: Callable | None = None,
                 identity_weight: float = 0.0):
        super().__init__()
        self.mse_weight, self.perceptual_weight = float(mse_weight), float(perceptual_weight)
        self.identity, self.identity_weight = identity, float(identity_weight)
        self.perceptual_resolution = perceptual_resolution
        if isinstance(perceptual, torch.nn.Module):
            self.perceptual_name, self.net = type(perceptual).__name__, perceptual
        elif perceptual in ("lpips-vgg", "lpips-alex"):
            self.perceptual_name, self.net = perceptual, load_lpips(perceptual.split("-")[1])
        elif perceptual in ("mse+ssim", "none"):
            self.perceptual_name, self.net = perceptual, None
        else:
            raise ValueError(f"perceptual must be 'lpips-vgg', 'lpips-alex', 'mse+ssim', 'none' or "
                             f"a module, got {perceptual!r}")
        if self.net is not None:
            self.net.requires_grad_(False)

    def perceptual_distance(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean perceptual distance (scalar)."""
        if self.perceptual_name == "none":
            return images.new_zeros(())
        if self.perceptual_name == "mse+ssim":
            return 1 - fast_ssim(images, targets)
        if images.shape[-1] > self.perceptual_resolution:
            size = (self.perceptual_resolution, self.perceptual_resolution)
            images = F.interpolate(images, size=size, mode="area")
            targets = F.interpolate(targets, size=size, mode="area")
        return self.net(images, targets).mean()

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """-> (loss scalar, {'mse', 'perceptual'[, 'identity']} as floats)."""
        if images.shape[-2:] != targets.shape[-2:]:
            targets = F.interpolate(targets, size=images.shape[-2:], mode="area")
        mse = F.mse_loss(images, targets)
        loss, terms = self.mse_weight * mse, {"mse": mse.item()}
        if self.perceptual_weight:
            p = self.perceptual_distance(images, targets)
            loss = loss + self.perceptual_weight * p
            terms["perceptual"] = p.item()
        if self.identity is not None and self.identity_weight:
            ident = self.identity(images, targets).mean()
            loss = loss + self.identity_weight * ident
            terms["identity"] = ident.item()
        return loss, terms


def loss_with_fallback(perceptual: str = "lpips-vgg") -> tuple[ImageLoss, str | None]:
    """``ImageLoss(1, 1, perceptual)`` when the LPIPS backbone weights are cached or can be fetched;
    otherwise the MSE + SSIM fallback, with one warning naming the file and where to put it, and
    that note (for metrics.json and report.md)."""
    try:
        return ImageLoss(1.0, 1.0, perceptual), None
    except LPIPSWeightsMissing as err:
        note = f"{perceptual} unavailable, used MSE + SSIM: {err}"
        warnings.warn(note, stacklevel=2)
        return ImageLoss(1.0, 1.0, "mse+ssim"), note
