"""Tasks the example notebooks run. Plain functions: `frw.run(fn, **inputs)` runs each as a
local process on the embedded service (or as a container task on a cluster)."""

from __future__ import annotations

import random
import time


def train(epochs: int = 10, delay: float = 0.4) -> dict[str, float]:
    """Logs a few coloured lines per epoch for a while, then returns its metrics."""
    loss = 1.0
    for epoch in range(1, epochs + 1):
        loss *= random.uniform(0.6, 0.9)
        colour = "\x1b[32m" if loss < 0.3 else "\x1b[33m"
        print(f"epoch {epoch:>3}/{epochs}  loss {colour}{loss:.4f}\x1b[0m", flush=True)
        for step in range(4):
            print(f"    step {step}: lr=0.001 batch={64 * (step + 1)}", flush=True)
        time.sleep(delay)
    return {"epochs": float(epochs), "loss": round(loss, 4)}


def flaky_division(numerator: float, denominator: float) -> float:
    """Fails with a ZeroDivisionError when asked to: the widget shows the error panel."""
    print(f"dividing {numerator} by {denominator}", flush=True)
    return numerator / denominator


def long_job(minutes: float = 10.0) -> str:
    """Runs until aborted (or for `minutes`)."""
    end = time.time() + minutes * 60
    tick = 0
    while time.time() < end:
        tick += 1
        print(f"still working… tick {tick}", flush=True)
        time.sleep(1)
    return "finished"
