"""Procedural data with exact ground truth: seeded 3D heads (``heads``) and the training script of
the embedded default generator (``train_default``)."""

from .heads import (BACKGROUND_DEPTH, HeadParams, HeadScene, render_head, render_scene,
                    sample_head, trace, yaw_cameras)

__all__ = ["BACKGROUND_DEPTH", "HeadParams", "HeadScene", "render_head",
           "render_scene", "sample_head", "trace", "yaw_cameras"]
