"""Decoder throughput: frames per second per model, decode alone and decode + normalise.

    python benchmarks/decoders.py [--seconds 1.0]

Each model decodes the data frames of its examples file (decoders/examples/) in a loop for about
``--seconds`` seconds; one core, pure Python, no I/O.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decoders import MODELS  # noqa: E402

GEOMETRY = {"distance_empty_m": 1.0, "distance_full_m": 0.15}


def frames(model) -> list[tuple[int, bytes]]:
    stem = model.id.replace("/", "_").replace("-", "_")
    examples = json.loads((ROOT / "decoders" / "examples" / f"{stem}.json").read_text())
    return [(e["f_port"], bytes.fromhex(e["bytes_hex"])) for e in examples if "error" not in e]


def rate(work, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            work()
        count += 200
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(f"# decoder throughput, Python {platform.python_version()}, {os.cpu_count()} cores "
          "(one used)")
    print("| decoder | data frames | decode frames/s | decode + normalise frames/s |")
    print("|---|---|---|---|")
    for model in MODELS:
        data = frames(model)
        if not data:
            continue
        state = {"i": 0}

        def decode_one() -> None:
            f_port, payload = data[state["i"] % len(data)]
            state["i"] += 1
            model.decode(f_port, payload)

        def full_one() -> None:
            f_port, payload = data[state["i"] % len(data)]
            state["i"] += 1
            model.normalize(model.decode(f_port, payload), GEOMETRY)

        print(f"| {model.id} | {len(data)} | {rate(decode_one, args.seconds):,.0f} | "
              f"{rate(full_one, args.seconds):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
