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
