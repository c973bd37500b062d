"""The risk gauge as an inline SVG arc (no chart library, prints in the PDF view too)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Gauge:
    path: str  # the filled arc from 0 to the probability
    needle_x: float
    needle_y: float
    percent: int


def gauge(probability: float, *, cx: float = 100, cy: float = 100, r: float = 80) -> Gauge:
    p = min(max(probability, 0.0), 1.0)
    angle = math.pi * (1 - p)  # 180° (left) at 0 to 0° (right) at 1
    x = cx + r * math.cos(angle)
    y = cy - r * math.sin(angle)
    path = f"M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {x:.2f} {y:.2f}"
    return Gauge(path=path, needle_x=round(x, 2), needle_y=round(y, 2), percent=round(p * 100))
