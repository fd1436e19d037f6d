#!/usr/bin/env python3
"""Turns the JSON lines of bench_tasks / pytorch_tasks.py into a Markdown table.

    python3 bench/table.py results.jsonl

One row per task, batch and thread count; one column per framework. Throughput is samples/s,
batch-1 inference is the median µs per call (lower is better). A framework measured more than
once in the file (nnc before and after PyTorch) shows every run, separated by " / ".
"""

import json
import sys
from collections import defaultdict

ORDER = {"mlp_train": 0, "mlp_infer": 1, "iris_train": 2, "cnn_train": 3, "cnn_infer": 4}


def fmt(line):
    if "median_us" in line:
        return f"{line['median_us']:.1f} µs"
    return f"{line['samples_per_s']:,.0f}"


def main():
    rows = defaultdict(lambda: defaultdict(list))
    frameworks = []
    for path in sys.argv[1:] or ["/dev/stdin"]:
        with open(path) as f:
            for text in f:
                text = text.strip()
                if not text.startswith("{"):
                    continue
                line = json.loads(text)
                key = (line["task"], line["batch"], line["threads"])
                rows[key][line["framework"]].append(fmt(line))
                if line["framework"] not in frameworks:
                    frameworks.append(line["framework"])
    print("| task | batch | threads | metric | " + " | ".join(frameworks) + " |")
    print("| --- | ---: | ---: | --- |" + " ---: |" * len(frameworks))
    for key in sorted(rows, key=lambda k: (ORDER.get(k[0], 9), k[0], k[2], k[1])):
        task, batch, threads = key
        metric = "median latency" if task.endswith("_infer") and batch == 1 else "samples/s"
        cells = [" / ".join(rows[key].get(fw, ["–"])) for fw in frameworks]
        print(f"| {task} | {batch} | {threads} | {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
