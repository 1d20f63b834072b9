"""The task the demo runs: it logs with colours for a while, then returns a summary."""

from __future__ import annotations

import time


def train(epochs: int = 8, delay: float = 0.5) -> dict[str, float]:
    loss = 1.0
    for epoch in range(1, epochs + 1):
        loss *= 0.7
        colour = "\x1b[32m" if loss < 0.3 else "\x1b[33m"
        print(f"epoch {epoch}/{epochs}  loss {colour}{loss:.4f}\x1b[0m", flush=True)
        for step in range(5):
            print(f"  step {step} of epoch {epoch}", flush=True)
        time.sleep(delay)
    return {"epochs": float(epochs), "final_loss": round(loss, 4)}
