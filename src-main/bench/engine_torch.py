"""The PyTorch side of `finch bench engine`, run by Debian's /usr/bin/python3 (python3-torch with
libopenblas0-pthread) as a child process with the same environment as the ONNX Runtime side.
Reads one JSON config (argv[1]) and prints one JSON object. Timing mirrors src-main/bench/timing.ts."""

import json
import math
import sys
import time

import torch


def measure(fn, o):
    for _ in range(o["warmup"]):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < o["minReps"] or time.perf_counter() - start < o["minSeconds"]:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    mid = len(times) // 2
    median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return {"medianMs": median, "minMs": times[0], "reps": len(times)}


def per_call_us(fn, n):
    for _ in range(min(100, n)):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def blas_library():
    """The BLAS shared object actually mapped into this process (reference BLAS is ~30x slower)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    names = {p for p in paths if "blas" in p.rsplit("/", 1)[-1].lower()}
    return ", ".join(sorted(names)) or "unknown"


def main(cfg):
    torch.set_num_threads(cfg["threads"])
    torch.set_grad_enabled(False)
    out = {"torchVersion": torch.__version__, "threads": torch.get_num_threads(), "matmul": []}
    for c in cfg["cases"]:
        m, k, n = c["m"], c["k"], c["n"]
        # The same operands as engine-ort.ts (computed in float64, stored as float32).
        x = torch.arange(m * k, dtype=torch.float64).mul(1e-3).sin().float().reshape(m, k)
        w = (torch.arange(k * n, dtype=torch.float64).mul(1e-3).cos() / math.sqrt(k)).float().reshape(k, n)
        timing = measure(lambda: torch.matmul(x, w), cfg["timing"])
        checksum = float(torch.matmul(x, w).abs().double().sum())
        out["matmul"].append({"name": c["name"], "timing": timing, "checksum": checksum})
    one = torch.ones(1)
    out["overhead"] = {"opUs": per_call_us(lambda: one + 1, cfg["overheadRuns"])}
    out["blas"] = blas_library()
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
