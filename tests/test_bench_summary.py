"""BENCHMARKS.md's figures table is exactly what the committed bench/results/*.json give.

The table is generated (`bench/run --summary`, bench/_summary.py); these tests make a hand edit of
a figure, a result committed without regenerating the table, or a benchmark without a committed
result fail CI.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TIMES = "\N{MULTIPLICATION SIGN}"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench{name}", REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


summary = _load("_summary")
record = _load("_record")


def committed_block() -> str:
    return summary.split_doc((REPO / "BENCHMARKS.md").read_text())[1]


def test_the_table_in_benchmarks_md_is_generated_from_the_committed_results() -> None:
    generated = summary.render(summary.load_results())
    assert committed_block() == generated, (
        "BENCHMARKS.md's figures table differs from what bench/results/*.json give: "
        "run `bench/run --summary` and commit both (never edit the table by hand)"
    )


def test_the_table_opens_the_document() -> None:
    before, _block, _after = summary.split_doc((REPO / "BENCHMARKS.md").read_text())
    assert before.strip() == "# Benchmarks"


def test_every_benchmark_has_a_committed_result() -> None:
    names = {
        m.group(1)
        for p in (REPO / "bench").glob("*.py")
        for m in re.finditer(r'Record\("(\w+)"\)', p.read_text())
    }
    assert names, "no benchmark writes a Record"
    missing = sorted(n for n in names if not (REPO / "bench" / "results" / f"{n}.json").is_file())
    assert not missing, f"no committed bench/results/<name>.json for {missing}: run them (bench/run NAME)"


def test_every_result_says_what_was_measured_where_and_under_what_load() -> None:
    records = summary.load_results()
    assert records
    for rec in records:
        where = rec["benchmark"]
        assert re.fullmatch(r"[0-9a-f]{7,40}", rec["commit"]), where
        assert isinstance(rec["dirty"], bool), where
        assert rec["command"].startswith(f"python bench/{where}.py"), where
        m = rec["machine"]
        assert m["nproc"] >= 1 and m["cpu"], where
        assert m["loadavg_1min_start"] >= 0 and m["loadavg_1min_end"] >= 0, where
        assert rec["figures"], where
        for f in rec["figures"]:
            assert f["value"] is not None or f["display"], (where, f["figure"])
            if f["baseline"] is not None:
                # The baseline is a figure of the same run, not a number carried over from elsewhere.
                assert isinstance(f["baseline_value"], (int, float)), (where, f["figure"])


def fake(
    value: Any, baseline: float | None, target: tuple[str, Any, str] | None, **kw: Any
) -> dict[str, Any]:
    return {
        "benchmark": "fake",
        "command": "python bench/fake.py --quick",
        "commit": "abc1234",
        "dirty": False,
        "date": "2030-01-02T03:04:05Z",
        "seconds": 1.0,
        "machine": {
            "nproc": 2,
            "cpu": "Test CPU",
            "python": "3.11",
            "loadavg_1min_start": 1.5,
            "loadavg_1min_end": 2.0,
            "cpu_busy_pct": 80.0,
        },
        "figures": [
            record.figure(
                "f",
                value,
                "ms",
                baseline="poll" if baseline is not None else None,
                baseline_value=baseline,
                target=target,
                **kw,
            )
        ],
    }


def row(rec: dict[str, Any]) -> list[str]:
    line = next(x for x in summary.render([rec]).splitlines() if x.startswith("| f "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_a_row_carries_the_figure_its_same_run_baseline_their_ratio_and_where_it_was_measured() -> None:
    cells = row(fake(12.5, 1000.0, ("<=", 50, "value")))
    assert cells == [
        "f",
        "12.5 ms",
        "≤ 50 ms: met",
        "poll: 1,000 ms",
        f"0.013{TIMES}",
        "`python bench/fake.py --quick`",
        "abc1234",
        "1.5 → 2.0, 80 % busy",
    ]


@pytest.mark.parametrize(
    ("value", "baseline", "target", "verdict"),
    [
        (51.0, 1000.0, ("<=", 50, "value"), "≤ 50 ms: **not met**"),
        (50.0, None, ("<=", 50, "value"), "≤ 50 ms: met"),
        (600.0, 10.0, (">=", 50, "ratio"), f"≥ 50{TIMES} baseline: met"),
        (400.0, 10.0, (">=", 50, "ratio"), f"≥ 50{TIMES} baseline: **not met**"),
    ],
)
def test_the_verdict_is_computed_from_the_numbers(
    value: float, baseline: float | None, target: Any, verdict: str
) -> None:
    assert row(fake(value, baseline, target))[2] == verdict


def test_a_figure_that_is_not_one_number_takes_its_verdict_from_the_run() -> None:
    ok = row(fake(None, None, ("is", "all", "value"), display="3 of 3", met=True))
    bad = row(fake(None, None, ("is", "all", "value"), display="2 of 3", met=False))
    assert ok[1:3] == ["3 of 3", "all: met"]
    assert bad[1:3] == ["2 of 3", "all: **not met**"]


def test_a_dirty_tree_is_shown() -> None:
    rec = fake(1.0, None, None)
    rec["dirty"] = True
    assert row(rec)[6] == "abc1234 (dirty)"


def test_summary_rewrites_only_the_block_and_check_catches_a_hand_edit(tmp_path: Path) -> None:
    """bench/run --summary on a copy: prose around the block survives; --check fails on an edit."""
    (tmp_path / "bench" / "results").mkdir(parents=True)
    for name in ("_summary.py", "_record.py"):
        (tmp_path / "bench" / name).write_text((REPO / "bench" / name).read_text())
    (tmp_path / "bench" / "results" / "fake.json").write_text(json.dumps(fake(12.5, 1000.0, None)))
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Benchmarks\n\n{summary.BEGIN}\nstale\n{summary.END}\n\nprose below\n")
    script = [sys.executable, str(tmp_path / "bench" / "_summary.py")]
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 1
    subprocess.run(script, check=True, capture_output=True)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n" + summary.BEGIN)
    assert text.endswith(f"{summary.END}\n\nprose below\n")
    assert "| f | 12.5 ms |" in text
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    doc.write_text(text.replace("| f | 12.5 ms |", "| f | 11.5 ms |"))
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 1
