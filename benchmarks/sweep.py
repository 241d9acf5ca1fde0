"""Audit sweep on Ray vs one run after another (``python3 benchmarks/sweep.py``).

Eight small audits — FedSGD and DP-FedAvg (clip 1, noise multiplier 0.01 / 0.1 / 1) x
Inverting Gradients (300 iterations, 1 restart) on 4 digits clients (convnet width 4) x
seeds 0, 1; each about 5-8 s on one core — run by :func:`audit.sweep.runner.run_sweep` with the
serial backend (in this process, one torch thread) and with a fresh local Ray of
``--workers`` CPUs (one run and one torch thread per worker). Prints each run's time, the
wall time of both sweeps, their ratio, Ray's start-up (``ray.init``), the threads each run
used, and checks that both backends wrote the same reports (apart from times and dates).

``--serial-threads 2`` gives the serial sweep two torch threads per run instead (the other
way to use two cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audit.fl.parallel_training import shutdown_ray  # noqa: E402
from audit.sweep import parse_spec, run_sweep  # noqa: E402
from reports.io import load_report  # noqa: E402
from reports.schema import strip_volatile  # noqa: E402


def spec_data(iterations: int, threads: int) -> dict:
    return {
        "name": "benchmark",
        "seeds": [0, 1],
        "base": {"dataset": "digits", "model": "convnet", "model_params": {"width": 4},
                 "num_targets": 4, "lpips": False, "threads": threads},
        "defenses": ["fedsgd", {"name": "dp-fedavg",
                                "params": {"clip_norm": 1.0, "noise_multiplier": [0.01, 0.1, 1.0]}}],
        "attacks": [{"name": "inverting-gradients",
                     "params": {"iterations": iterations, "restarts": 1}}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--serial-threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="keep the sweeps here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fedaudit-sweep-bench-") as tmp:
        out = Path(args.out or tmp)
        serial_spec = parse_spec(spec_data(args.iterations, args.serial_threads), source="benchmark")
        ray_spec = parse_spec(spec_data(args.iterations, 1), source="benchmark")
        assert [r.id for r in serial_spec.runs] == [r.id for r in ray_spec.runs]
        print(f"{len(ray_spec)} runs: " + ", ".join(r.slug for r in ray_spec.runs))

        t = time.perf_counter()
        serial = run_sweep(serial_spec, out / "serial", backend="serial", progress=False)
        serial_s = time.perf_counter() - t

        shutdown_ray()
        t = time.perf_counter()
        on_ray = run_sweep(ray_spec, out / "ray", backend="ray", workers=args.workers, progress=False)
        ray_s = time.perf_counter() - t

        for result in (serial, on_ray):
            if result.failed or result.done_before:
                sys.exit(f"benchmark needs a fresh output folder and no failures: {result.summary()}")

        print(f"\n{'run':<58} {'serial s':>9} {'ray s':>7}")
        for run in ray_spec.runs:
            print(f"{run.slug:<58} {serial.run_info[run.id].seconds:9.2f} {on_ray.run_info[run.id].seconds:7.2f}")
        per_run = [serial.run_info[r.id].seconds for r in ray_spec.runs]
        print(f"\nper run (serial): mean {statistics.mean(per_run):.2f} s, "
              f"min {min(per_run):.2f} s, max {max(per_run):.2f} s")
        threads_serial = sorted({i.threads for i in serial.run_info.values()})
        threads_ray = sorted({i.threads for i in on_ray.run_info.values()})
        pids = len({i.pid for i in on_ray.run_info.values()})
        print(f"serial: {serial_s:6.1f} s wall ({len(per_run)} runs one after another, torch threads "
              f"per run {threads_serial})")
        print(f"ray:    {ray_s:6.1f} s wall ({on_ray.workers} workers, {pids} worker processes, torch "
              f"threads per worker {threads_ray}; ray.init {on_ray.ray_init_s:.1f} s)")
        busy = sum(i.seconds for i in on_ray.run_info.values()) / on_ray.workers
        print(f"ray overhead beyond the runs spread over the workers: {ray_s - busy:.1f} s "
              "(ray.init, worker start and imports, shutdown, compliance report)")
        print(f"ratio serial / ray: {serial_s / ray_s:.2f}x")

        differ = []
        for r in ray_spec.runs:
            a, b = (strip_volatile(load_report(out / kind / "runs" / r.id / "report.json"))
                    for kind in ("serial", "ray"))
            if args.serial_threads != 1:  # the command and environment name the threads
                a, b = a["findings"], b["findings"]
            if a != b:
                differ.append(f"{r.slug}: {_first_difference(a, b)}")
        what = "reports" if args.serial_threads == 1 else "findings"
        print(f"same {what} from both backends (apart from times and dates): {not differ}")
        for line in differ:
            print(f"  differs: {line}")


def _first_difference(a, b, path: str = "") -> str:
    """Where two JSON values first differ, e.g. ``findings[0].metrics[1].mean: 1.2 != 1.3``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {str(a)[:40]} != {str(b)[:40]}"


if __name__ == "__main__":
    main()
