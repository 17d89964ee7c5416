"""Golden tiny runs of every inversion method (issue 19: the inversion layer is redesigned by
moving code, and these runs must not change while it moves).

Each case runs one method through ``inversion.run`` with a fixed seed on one thread and records
checksums of its latents (ws), of its generator delta and its metrics in
``tests/fixtures/golden_runs.json``. The test compares a fresh run to the record with a relative
tolerance of 1e-4 (the record's last digits depend on the CPU's matmul kernels; a behaviour change
moves them by far more). To record again after an intended change:

    python tests/test_golden_runs.py --record
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

import inversion
from mlp_generator import MLPRadianceGenerator
from nerfgan_kernels.render import look_at_camera

RECORD = Path(__file__).parent / "fixtures" / "golden_runs.json"
MSE = dict(mse_weight=1.0, perceptual_weight=0.0, perceptual="none")
RTOL, ATOL = 1e-4, 1e-7


def _frames(G, yaws=(-0.4, 0.0, 0.4), seed=11):
    cams = look_at_camera(math.pi / 2 + torch.tensor(yaws), torch.full((len(yaws),), math.pi / 2))
    with torch.no_grad():
        w0 = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed)), cams[:1])
        return inversion.Target(G.synthesis(w0.expand(len(yaws), -1, -1), cams)["image"], cams)


def _tiny_triplane():
    from nerfgan_kernels.models import build_generator
    from test_inversion_acceptance import tiny_triplane_kwargs
    torch.manual_seed(0)
    return build_generator(tiny_triplane_kwargs(), 32)


def _options(method: str) -> dict:
    small = {"projection_steps": 3, "tuning_steps": 2, "projection_options": {"w_std_samples": 32}}
    if method == "nerfinvertor":
        small["tuning_options"] = {"explicit_resolution": 4, "explicit_samples": 6}
    if method == "multiview":
        small["tuning_options"] = {"method": "pti"}
    if method == "multilatent":
        small["tuning_options"] = {"iterations": 2}
        del small["tuning_steps"]
    if method == "incremental":
        small = {"projection_steps": 3, "tuning_options": {"frame_steps": 2, "tune_steps": 1}}
    return small


CASES = [("mlp", m) for m in inversion.METHODS] + [("triplane", "pti"), ("triplane", "nerfinvertor")]


def run_case(generator: str, method: str) -> dict:
    """Checksums of one golden run: ws (sum, abs sum), delta (abs sum per tensor), metrics."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        G = MLPRadianceGenerator() if generator == "mlp" else _tiny_triplane()
        target = _frames(G)
        if method in ("w", "wplus", "pti", "nerfinvertor"):
            target = inversion.Target(target.images[1:2], target.cameras[1:2])
        torch.manual_seed(1)
        r = inversion.run(method, G, target, progress=False, loss=inversion.ImageLoss(**MSE),
                          seed=0, **_options(method))
    finally:
        torch.set_num_threads(threads)
    ws = r.ws.double()
    return {"ws": [float(ws.sum()), float(ws.abs().sum())],
            "delta": {k: float(v.double().abs().sum()) for k, v in sorted(r.delta.items())},
            "metrics": {k: float(v) for k, v in sorted(r.metrics.items())
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                        and "second" not in k and "time" not in k}}


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= ATOL + RTOL * abs(b)


@pytest.mark.parametrize("generator,method", CASES)
def test_golden_run_is_unchanged(generator, method):
    record = json.loads(RECORD.read_text())[f"{generator}/{method}"]
    now = run_case(generator, method)
    assert all(_close(a, b) for a, b in zip(now["ws"], record["ws"])), (now["ws"], record["ws"])
    assert sorted(now["delta"]) == sorted(record["delta"])
    for part in ("delta", "metrics"):
        bad = {k: (now[part].get(k), v) for k, v in record[part].items()
               if k not in now[part] or not _close(now[part][k], v)}
        assert not bad, f"{part} changed: {bad}"


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/test_golden_runs.py --record")
    sys.path.insert(0, str(Path(__file__).parent))
    RECORD.write_text(json.dumps({f"{g}/{m}": run_case(g, m) for g, m in CASES}, indent=1) + "\n")
    print(f"wrote {RECORD}")
