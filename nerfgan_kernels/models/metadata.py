"""What a checkpoint says about its generator beyond the weights: the camera geometry of its
data set and the photo-alignment convention of its training crops. Both checkpoint formats fill
it (``TriPlaneGenerator.metadata``); the inversion methods read it through the generator
protocol."""

from __future__ import annotations

from dataclasses import dataclass

from ..render.cameras import FFHQ, GEOMETRIES, Geometry, geometry_for


@dataclass(frozen=True)
class GeneratorMetadata:
    """geometry: the data set's cameras (``render.cameras.Geometry``: radius, pivot, focal,
    neighbour-camera distribution, turntable path). alignment: the alignment convention
    (``inversion.align.convention``, as a dict of its coefficients) or None for FFHQ's."""

    geometry: Geometry = FFHQ
    alignment: dict | None = None

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
        return cls(geometry_for(name, rendering_kwargs), alignment)

    def to_config(self) -> dict:
        """The JSON config entries ``from_config`` reads back."""
        out = {"geometry": self.geometry.name}
        if self.alignment is not None:
            out["alignment"] = self.alignment
        return out
