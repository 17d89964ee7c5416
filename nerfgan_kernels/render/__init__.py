"""Renderer building blocks on this package's kernels, with EG3D's conventions and interfaces.

- cameras: EG3D camera labels (25-vectors), look-at cameras by angle or by EG3D's (h, v), the
  named camera geometries (FFHQ, AFHQ, ShapeNet cars), neighbour and turntable cameras.
- rays: ray generation, ray/box limits.
- sampling: stratified depth samples.
- decoder: EG3D's OSG decoder (tri-plane features -> colour features, raw density).
- memory: the memory model (bytes per ray / point) and the chunk planner.
- options: EG3D's rendering options, parsed once.
- paths: the three computation paths ("fused", "kernels", "reference") and the fallbacks.
- points: point queries ``sample_mixed`` (EG3D's ``run_model``) and ``render_density``.
- renderer: ``ImportanceRenderer`` (EG3D's interface).
- patch: swap the renderer into an existing EG3D generator object.
"""

from .cameras import (AFHQ, FFHQ, GEOMETRIES, SHAPENET_CARS, Geometry, angles_to_eg3d,
                      camera_angles, camera_from_angles, eg3d_to_angles, ffhq_intrinsics,
                      fov_intrinsics, geometry_for, look_at_camera, neighbour_cameras,
                      turntable_cameras)
from .decoder import OSGDecoder
from .patch import Patch, patch_eg3d_generator
from .rays import RaySampler, camera_rays, ray_box_intersect, rays_from_matrices
from .memory import DEFAULT_MAX_MEMORY_BYTES, plan_chunks, ray_bytes
from .points import render_density, sample_mixed
from .renderer import ImportanceRenderer
from .sampling import stratified_depths

__all__ = [
    "AFHQ", "FFHQ", "GEOMETRIES", "SHAPENET_CARS", "Geometry", "angles_to_eg3d", "camera_angles",
    "camera_from_angles", "eg3d_to_angles", "ffhq_intrinsics", "fov_intrinsics", "geometry_for",
    "look_at_camera", "neighbour_cameras", "turntable_cameras",
    "OSGDecoder", "Patch", "patch_eg3d_generator", "RaySampler", "camera_rays",
    "ray_box_intersect", "rays_from_matrices", "DEFAULT_MAX_MEMORY_BYTES", "ImportanceRenderer",
    "plan_chunks", "ray_bytes", "render_density", "sample_mixed", "stratified_depths",
]
