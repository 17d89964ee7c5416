"""What a checkpoint says about its generator beyond the weights: the camera geometry of its
data set and the photo-alignment convention of its training crops. Both checkpoint formats fill
it (``TriPlaneGenerator.metadata``); the inversion methods read it through the generator
protocol."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..render.cameras import FFHQ, GEOMETRIES, Geometry, geometry_for


@dataclass(frozen=True)
class GeneratorMetadata:
    """geometry: the data set's cameras (``render.cameras.Geometry``: radius, pivot, focal,
    neighbour-camera distribution, turntable path). alignment: the alignment convention
    (``inversion.align.convention``, as a dict of its coefficients) or None for FFHQ's. box: the
    side of the cube the generator's volume fills (EG3D's ``box_warp``). mesh_threshold: the raw
    density level of its surface for marching cubes (EG3D's 10 unless the config says otherwise)."""

    geometry: Geometry = FFHQ
    alignment: dict | None = None
    box: float = 1.0
    mesh_threshold: float = 10.0

    @classmethod
    def from_config(cls, config: dict | None, rendering_kwargs: dict | None) -> "GeneratorMetadata":
        """From a JSON config's ``geometry`` (a preset name; default: the preset matching the
        ``rendering_kwargs`` radius and pivot) and ``alignment`` entries."""
        config = config or {}
        alignment = config.get("alignment")
        if alignment is not None and not isinstance(alignment, dict):
            raise ValueError(f"config 'alignment' must be a dict of coefficients, got {type(alignment).__name__}")
        name = config.get("geometry")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"config 'geometry' must be one of {sorted(GEOMETRIES)}, got {name!r}")
        box = (rendering_kwargs or {}).get("box_warp", 1.0)
        level = config.get("mesh_threshold", 10.0)
        for key, value in (("rendering_kwargs['box_warp']", box), ("mesh_threshold", level)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or (key != "mesh_threshold" and value <= 0):
                raise ValueError(f"config {key} must be a finite number{' > 0' if key != 'mesh_threshold' else ''}, "
                                 f"got {value!r}")
        return cls(geometry_for(name, rendering_kwargs), alignment, float(box), float(level))

    def to_config(self) -> dict:
        """The JSON config entries ``from_config`` reads back."""
        out = {"geometry": self.geometry.name, "mesh_threshold": self.mesh_threshold}
        if self.alignment is not None:
            out["alignment"] = self.alignment
        return out
