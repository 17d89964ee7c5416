"""Shared test helpers."""

from __future__ import annotations

import os

import pytest
import torch

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SHARED_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                               "fixtures", "eg3d")

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max|out - ref| / max|ref| over the whole tensor (the project's definition)."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if ref.numel() == 0:
        return 0.0
    scale = ref.abs().max().item()
    diff = (out.double() - ref.double()).abs().max().item()
    return diff / scale if scale > 0 else diff


def fixture_path(name: str) -> str:
    return os.path.join(FIXTURES, name)


def assert_eg3d_look_at_label(c, radius: float = 2.7, pivot=(0.0, 0.0, 0.2)) -> None:
    """c (25,): an orthonormal proper rotation, the camera on the sphere of ``radius`` around the
    origin, its forward axis through ``pivot``, no roll (its right axis is level)."""
    c = torch.as_tensor(c, dtype=torch.float64)
    R, pos = c[:16].reshape(4, 4)[:3, :3], c[:16].reshape(4, 4)[:3, 3]
    assert torch.allclose(R.T @ R, torch.eye(3, dtype=torch.float64), atol=1e-5), "rotation not orthonormal"
    assert abs(torch.det(R) - 1) < 1e-5, "rotation not proper"
    assert abs(pos.norm() - radius) < 1e-5, f"camera at distance {float(pos.norm())}, expected {radius}"
    to_pivot = torch.tensor(pivot, dtype=torch.float64) - pos
    assert torch.allclose(R[:, 2], to_pivot / to_pivot.norm(), atol=1e-5), "not looking at the pivot"
    assert abs(R[1, 0]) < 1e-6, "rolled: the right axis is not level"
