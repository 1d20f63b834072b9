"""Summarise py-spy ``--format raw`` (collapsed stack) files: where the samples go.

    python bench/pyspy_top.py bench/results/profile/service-a.txt [--top 25]

Prints, per thread, the share of samples of the functions that hold the most samples
themselves (self) and in total (inclusive, counted once per stack).
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_LINE_NO = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = _LINE_NO.sub(")", "(" + where) if where else ""
    short = where.rsplit("/", 1)[-1] if where else ""
    return f"{name} ({short.rstrip(')')})" if short else name


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()
    for path in args.files:
        selfc: collections.Counter[str] = collections.Counter()
        incl: collections.Counter[str] = collections.Counter()
        total = 0
        for raw in path.read_text().splitlines():
            stack, _, count = raw.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [frame_name(f) for f in stack.split(";")]
            total += n
            selfc[frames[-1]] += n
            for f in set(frames):
                incl[f] += n
        print(f"== {path} ({total} samples)")
        print("   self%  function")
        for f, n in selfc.most_common(args.top):
            print(f"  {100 * n / total:5.1f}  {f}")
        print("   incl%  function")
        for f, n in incl.most_common(args.top):
            print(f"  {100 * n / total:5.1f}  {f}")
        print()


if __name__ == "__main__":
    main()
