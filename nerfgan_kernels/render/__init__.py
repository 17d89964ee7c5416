"""Renderer building blocks on this package's kernels, with EG3D's conventions and interfaces.

- rays: EG3D cameras (25-vectors), ray generation, ray/box limits, look-at cameras.
- sampling: stratified depth samples.
- decoder: EG3D's OSG decoder (tri-plane features -> colour features, raw density).
- renderer: ``ImportanceRenderer`` (EG3D's interface), ``render_density``, ``sample_mixed``.
- patch: swap the renderer into an existing EG3D generator object.
"""

from .decoder import OSGDecoder
from .patch import Patch, patch_eg3d_generator
from .rays import (RaySampler, camera_angles, camera_rays, ffhq_intrinsics, fov_intrinsics,
                   look_at_camera, ray_box_intersect, rays_from_matrices)
from .renderer import (DEFAULT_MAX_MEMORY_BYTES, ImportanceRenderer, plan_chunks, ray_bytes,
                       render_density, sample_mixed)
from .sampling import stratified_depths

__all__ = [
    "OSGDecoder", "Patch", "patch_eg3d_generator", "RaySampler",
    "camera_angles", "camera_rays", "ffhq_intrinsics", "fov_intrinsics", "look_at_camera",
    "ray_box_intersect", "rays_from_matrices", "DEFAULT_MAX_MEMORY_BYTES", "ImportanceRenderer",
    "plan_chunks", "ray_bytes", "render_density", "sample_mixed", "stratified_depths",
]
