"""Named schedules: how many steps each stage of a method runs, and with which stage options.

The stage functions keep the published values as their defaults (``ProjectionConfig``,
``PTIConfig``, ``NeRFInvertorConfig``); a schedule only chooses ``inversion.run`` options:

* ``"published"``: the papers' schedules: projection 500 steps (EG3D-Projector / PTI's W
  projector), PTI 350 tuning steps, NeRFInvertor 1000 tuning steps, everything else at the stage
  defaults.
* ``"default"``: the project's fast recipe (what ``nerfgan-invert`` and the demo run), measured
  against ``"published"`` by ``benchmarks/time_to_quality.py``: NeRFInvertor's terms with the masked
  regularizers, its explicit term at 32^2 rays x 24 samples, a higher lr (5e-4) and a short EMA
  (0.9) for 35 tuning steps after 80 projection steps.

``schedule_options(name, method)`` -> keyword options of ``inversion.run``.
"""

from __future__ import annotations

import copy

FAST_NERFINVERTOR = {"masked": True, "explicit_resolution": 32, "explicit_samples": 24, "lr": 5e-4,
                     "ema_decay": 0.9}

SCHEDULES: dict[str, dict[str, dict]] = {
    "published": {
        "w": {"projection_steps": 500},
        "wplus": {"projection_steps": 500},
        "pti": {"projection_steps": 500, "tuning_steps": 350},
        "nerfinvertor": {"projection_steps": 500, "tuning_steps": 1000},
        "multiview": {"projection_steps": 500},
        "multilatent": {"projection_steps": 100},
        "incremental": {"projection_steps": 100},
    },
    "default": {
        "w": {"projection_steps": 80},
        "wplus": {"projection_steps": 80},
        "pti": {"projection_steps": 80, "tuning_steps": 35},
        "nerfinvertor": {"projection_steps": 80, "tuning_steps": 35, "tuning_options": FAST_NERFINVERTOR},
        "multiview": {"projection_steps": 100},
        "multilatent": {"projection_steps": 100},
        "incremental": {"projection_steps": 100},
    },
}


def schedule_options(name: str, method: str) -> dict:
    """The ``inversion.run`` options of schedule ``name`` for ``method`` (a copy: change it
    freely). ValueError for an unknown schedule or method."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {name!r}")
    if method not in SCHEDULES[name]:
        raise ValueError(f"method must be one of {sorted(SCHEDULES[name])}, got {method!r}")
    return copy.deepcopy(SCHEDULES[name][method])
