"""The one output schema of an inversion run: ``metrics.json`` (version ``SCHEMA_VERSION``) and
``report.md``, written the same way by ``nerfgan-invert`` (photos, views, video) and by its demo.

metrics.json, version 1 (keys always present; null where a run has no such value):

    schema          "nerfgan-invert/metrics"
    version         1
    method          the method name (``inversion.METHODS``), plus the demo's note on the variant
    generator       the checkpoint the run started from
    views           number of target views
    loss            the image loss actually used (``ImageLoss.perceptual_name``); loss_note: why
                    it differs from the one asked for, or null
    input_view      scores at the target views (``view_summary``): psnr, ssim (means), lpips
                    (mean, when an LPIPS metric was loaded), depth_mae (mean, when the target has
                    exact depth), per_view {name: [one value per view]}
    held_out_views  the same at held-out views with exact ground truth (the demo), or null
    depth_consistency  the multi-latent paper's depth consistency at the target views, or null
    optimisation    the method's own final metrics (``Result.metrics``: loss terms, steps run,
                    the projection's PSNR, NeRFInvertor's neighbour radius, ...)
    target          a description of the target (files, or the demo's head seed and cameras)
    timings         seconds per stage (``Result.timings``) plus outputs and total
    files           the files written, relative to the output folder
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SCHEMA = "nerfgan-invert/metrics"
SCHEMA_VERSION = 1
SCORES = ("psnr", "ssim", "lpips", "depth_mae")


def view_summary(scores: dict | None) -> dict | None:
    """``evaluation.score_views`` output -> {name: mean} for the scores it has, plus
    'per_view' {name: list}; None stays None."""
    if scores is None:
        return None
    present = [k for k in SCORES if k in scores]
    return {**{k: float(scores[f"mean_{k}"]) for k in present},
            "per_view": {k: [float(v) for v in scores[k]] for k in present}}


def run_metrics(*, method: str, generator: str, views: int, loss: str, input_view: dict,
                optimisation: dict, timings: dict, files: dict, target: dict,
                loss_note: str | None = None, held_out_views: dict | None = None,
                depth_consistency: float | None = None) -> dict:
    """The metrics.json dict of one run (see the module docstring); input_view and
    held_out_views are ``score_views`` outputs."""
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "method": method,
            "generator": str(generator), "views": int(views), "loss": loss, "loss_note": loss_note,
            "input_view": view_summary(input_view), "held_out_views": view_summary(held_out_views),
            "depth_consistency": None if depth_consistency is None else float(depth_consistency),
            "optimisation": {k: v for k, v in optimisation.items() if _is_json_scalar(v)},
            "target": target, "timings": {k: float(v) for k, v in timings.items()},
            "files": {k: str(v) for k, v in files.items()}}


def _is_json_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def write_run_outputs(out: Path, metrics: dict) -> None:
    """Writes ``out/metrics.json`` (atomically) and ``out/report.md``."""
    out = Path(out)
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=1))
    os.replace(tmp, out / "metrics.json")
    (out / "report.md").write_text(report_markdown(metrics))


def _scores_line(name: str, s: dict) -> str:
    parts = [f"PSNR {s['psnr']:.2f} dB", f"SSIM {s['ssim']:.3f}"]
    if "lpips" in s:
        parts.append(f"LPIPS {s['lpips']:.3f}")
    if "depth_mae" in s:
        parts.append(f"depth MAE {s['depth_mae']:.4f} (world units; the box is 1)")
    return f"{name}: " + ", ".join(parts) + "."


def _per_view_table(s: dict, columns: list[str], header: str) -> list[str]:
    names = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "depth_mae": "depth MAE"}
    formats = {"psnr": "{:.2f}", "ssim": "{:.3f}", "lpips": "{:.3f}", "depth_mae": "{:.4f}"}
    lines = [f"| {header} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for k, values in s["per_view"].items():
        lines.append(f"| {names[k]} | " + " | ".join(formats[k].format(v) for v in values) + " |")
    return lines


def report_markdown(m: dict) -> str:
    """report.md of a metrics dict: what ran, the picture strip, the scores, the timings."""
    files = m["files"]
    lines = [f"# nerfgan-invert: {m['method']}", "",
             f"Generator: `{m['generator']}`. Views: {m['views']}. Loss: {m['loss']}."
             + (f" Note: {m['loss_note']}" if m["loss_note"] else ""), ""]
    strip = [f"![{name}]({files[name]})" for name in ("input", "reconstruction", "depth")
             if name in files]
    if strip:
        lines += [" ".join(strip) + "  ", "(reconstruction: target | render)", ""]
    if "novel_views" in files:
        lines += ["Novel views (rows: ground truth, inversion, inverted depth):", "",
                  f"![novel views]({files['novel_views']})", ""]
    if "turntable" in files:
        lines += [f"Turntable: [{files['turntable']}]({files['turntable']})", ""]
    lines.append(_scores_line("Input view" + ("s" if m["views"] > 1 else ""), m["input_view"]))
    lines.append("")
    held = m["held_out_views"]
    if held is not None:
        yaws = m["target"].get("novel_yaws")
        columns = [f"{y:+.0f}" for y in yaws] if yaws else [str(i) for i in range(len(held["per_view"]["psnr"]))]
        lines += _per_view_table(held, columns, "yaw (deg)" if yaws else "view") + [""]
        lines += [_scores_line("Held-out mean", held), ""]
    if m["depth_consistency"] is not None:
        lines += [f"Depth consistency across the latents: {m['depth_consistency']:.5f}.", ""]
    lines += ["Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings"].items()), ""]
    return "\n".join(lines)
