"""bench/phase_latency.py's observers of a run's phase: the baseline that polls GetRunDetails once
a second, and the matching of what an observer showed against the states the service stored
(detection latency, states shown)."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from service_streams import pct, stored_states

PID = ids.ProjectIdentifier(name="proj", domain="development")
TERMINAL = {5, 6, 7, 8}
FRIENDLY = {1: "queued", 2: "waiting_for_resources", 3: "initializing", 4: "running"}
FRIENDLY.update({5: "succeeded", 6: "failed", 7: "aborted", 8: "timed_out"})

Obs = tuple[float, int, int]  # (time s, attempts or 0 = unknown, raw phase)


class Poller(threading.Thread):
    """The baseline: GetRunDetails for every run, one sweep a second."""

    def __init__(self, endpoint: str, names: list[str], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.stub = rs_grpc.RunServiceStub(grpc.insecure_channel(endpoint))
        self.names = names
        self.interval = interval
        self.obs: dict[str, list[Obs]] = {n: [] for n in names}
        self.start_time = time.time()
        self.stop = threading.Event()

    def run(self) -> None:
        ids_ = {n: ids.RunIdentifier(project=PID.name, domain=PID.domain, name=n) for n in self.names}
        next_t = time.time()
        while not self.stop.is_set():
            for n, rid in ids_.items():
                st = self.stub.GetRunDetails(rs.GetRunDetailsRequest(run_id=rid)).details.action.status
                obs = self.obs[n]
                state = (int(st.attempts), int(st.phase))
                if not obs or obs[-1][1:] != state:
                    obs.append((time.time(), *state))
            if all(o and o[-1][2] in TERMINAL for o in self.obs.values()):
                return
            next_t += self.interval
            self.stop.wait(max(0.0, next_t - time.time()))


def match(obs: list[Obs], states: list[tuple[int, int, int]]) -> list[int]:
    """The stored-state index each observation shows (-1: none). With attempts known, exact; with
    the phase alone (the DOM), the next state of that phase after the previous match that had
    started by then."""
    out, last = [], -1
    for t, attempt, phase in obs:
        j = -1
        for i in range(max(0, last), len(states)):
            a, p, start = states[i]
            if p == phase and (attempt == 0 or a == attempt) and start / 1e9 <= t + 0.001:
                j = i
                if attempt:
                    break
                break
        if j < 0 and attempt:  # a trait observed between its two updates: an earlier state
            j = max(0, last)
        out.append(j)
        last = max(last, j)
    return out


def detection(
    obs: list[Obs], states: list[tuple[int, int, int]], since: float
) -> tuple[list[float], int, int]:
    """(latency ms of every state starting after ``since``, states shown, states counted)."""
    idx = match(obs, states)
    lat, counted = [], 0
    for i, (_a, _p, start) in enumerate(states):
        if start / 1e9 < since:
            continue
        counted += 1
        seen = [t for (t, _, _), j in zip(obs, idx, strict=True) if j >= i]
        if seen:
            lat.append((min(seen) - start / 1e9) * 1000)
    shown = len({j for j in idx if j >= 0 and states[j][2] / 1e9 >= since})
    return lat, shown, counted


def final_states(stub: rs_grpc.RunServiceStub, names: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    out = {}
    for n in names:
        aid = ids.ActionIdentifier(
            run=ids.RunIdentifier(project=PID.name, domain=PID.domain, name=n), name="a0"
        )
        out[n] = stored_states(stub.GetActionDetails(rs.GetActionDetailsRequest(action_id=aid)).details)
    return out


def summarize(label: str, lat: list[float], shown: int, counted: int, target: float | None) -> dict[str, Any]:
    return {
        "observer": label,
        "n": len(lat),
        "counted": counted,
        "shown": shown,
        "p50": pct(lat, 50),
        "p90": pct(lat, 90),
        "p99": pct(lat, 99),
        "max": max(lat) if lat else float("nan"),
        "target": target,
    }
