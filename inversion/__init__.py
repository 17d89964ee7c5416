"""Inversion of NeRF-GANs on the generator protocol of docs/design.md: W / W+ projection, PTI,
NeRFInvertor, multi-view, multi-latent and incremental inversion, with shared targets, losses, an
optimization loop, results and ground-truth evaluation.

Entry point: ``inversion.run(method, generator, target, **options)``; CLI ``nerfgan-invert``.
"""

from .api import METHODS, run
from .evaluation import depth_consistency, score_views, ssim
from .incremental import Session
from .loop import LoopConfig, run_loop
from .losses import ImageLoss, LPIPSWeightsMissing, fast_ssim, load_lpips, psnr
from .multilatent import AzimuthBlend, multilatent_inversion, multiview_inversion
from .nerfinvertor import nerfinvertor_tuning
from .neighborhood import calibrate_radius, neighbor_latents, neighborhood_batch, random_cameras
from .evaluation import evaluate
from .projection import project
from .pti import pivotal_tuning
from .result import Result
from .target import Target, load_camera, load_image, load_target

__all__ = ["METHODS", "run", "depth_consistency", "score_views", "Session", "AzimuthBlend",
           "multilatent_inversion", "multiview_inversion", "LoopConfig", "run_loop", "ImageLoss", "LPIPSWeightsMissing",
           "load_lpips", "psnr", "ssim", "fast_ssim", "nerfinvertor_tuning", "calibrate_radius",
           "neighbor_latents", "neighborhood_batch", "random_cameras", "evaluate", "project",
           "pivotal_tuning", "Result", "Target", "load_camera", "load_image", "load_target"]
