"""Timing and reporting shared by the benchmark runners of PyTorch, JAX and ONNX Runtime
(the method of bench/README.md, which examples/bench_tasks.rs follows too)."""

import json
import math
import sys
import time

BATCHES = 4
WARMUP_S = 0.3
BLOCK_S = 0.15
BLOCKS = 5
LATENCY_CALLS = 500
LATENCY_S = 0.5
LATENCY_MAX_CALLS = 200_000


def throughput(batch, call):
    """(first call in µs, median block's samples/s) of call(i), which runs batch i % 4."""
    t = time.perf_counter()
    call(0)
    first_us = (time.perf_counter() - t) * 1e6

    i, warm = 1, 0
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S:
        call(i)
        i += 1
        warm += 1
    per_call = (time.perf_counter() - start) / warm
    calls_per_block = max(1, math.ceil(BLOCK_S / per_call))

    rates = []
    for _ in range(BLOCKS):
        t = time.perf_counter()
        for _ in range(calls_per_block):
            call(i)
            i += 1
        rates.append(calls_per_block * batch / (time.perf_counter() - t))
    rates.sort()
    return first_us, rates[BLOCKS // 2]


def latency(call):
    t = time.perf_counter()
    call(0)
    first_us = (time.perf_counter() - t) * 1e6

    i = 1
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S:
        call(i)
        i += 1

    samples = []
    start = time.perf_counter()
    while len(samples) < LATENCY_CALLS or (
        time.perf_counter() - start < LATENCY_S and len(samples) < LATENCY_MAX_CALLS
    ):
        t = time.perf_counter_ns()
        call(i)
        samples.append((time.perf_counter_ns() - t) / 1e3)
        i += 1
    samples.sort()

    def pick(q):
        return samples[round((len(samples) - 1) * q)]

    return first_us, pick(0.5), pick(0.1), pick(0.9), len(samples)


def emit(framework, task, batch, threads, **fields):
    line = {"framework": framework, "task": task, "batch": batch, "threads": threads}
    line.update({k: round(float(v), 3) for k, v in fields.items()})
    print(json.dumps(line), flush=True)


def report_throughput(framework, task, batch, threads, result):
    first_us, rate = result
    print(f"{framework} {task} batch {batch}: {rate:.0f} samples/s "
          f"(first call {first_us:.1f} µs)", file=sys.stderr)
    emit(framework, task, batch, threads, samples_per_s=rate, first_call_us=first_us)


def report_latency(framework, task, threads, result):
    """Prints and emits the batch-1 latency figures that `latency` returns."""
    first_us, median, p10, p90, calls = result
    print(f"{framework} {task} batch 1: median {median:.2f} µs, p10 {p10:.2f}, "
          f"p90 {p90:.2f} over {calls} calls", file=sys.stderr)
    emit(framework, task, 1, threads, median_us=median, p10_us=p10, p90_us=p90,
         first_call_us=first_us, calls=calls)
