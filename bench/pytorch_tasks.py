#!/usr/bin/env python3
"""PyTorch side of nnc's standard benchmark tasks (see bench/README.md).

Measures `mlp_train` (batch 1, 32, 128, 1024), `mlp_infer` (batch-1 latency, batch-64
throughput) and `iris_train` (batch 32) exactly as `examples/bench_tasks.rs` does, and prints
the same JSON lines, with "framework" set to "pytorch" (eager) or "pytorch_compile"
(`torch.compile`).

    taskset -c 0   python bench/pytorch_tasks.py --task all --threads 1
    taskset -c 0,1 python bench/pytorch_tasks.py --task all --threads 2 --mode both

Method: random normal float32 inputs and uniform integer labels from seed 0, 4 batches
generated before timing and cycled; the first call timed on its own (for torch.compile that is
the compile time); at least 0.3 s of warm-up; then 5 blocks of about 0.15 s, reporting the
median block's samples per second. Batch-1 latency: median, 10th and 90th percentiles of at
least 500 synchronous calls, each timed on its own. JSON goes to stdout, progress to stderr.
"""

import argparse
import sys

import torch
import torch.nn.functional as F
from torch import nn

from timing import BATCHES, latency, report_latency, report_throughput, throughput
import gpt_pytorch


def make_data(batch, features, classes):
    """4 batches of normal inputs and uniform labels from one generator seeded with 0."""
    g = torch.Generator().manual_seed(0)
    xs, ys = [], []
    for _ in range(BATCHES):
        xs.append(torch.randn(batch, features, generator=g, dtype=torch.float32))
        ys.append(torch.randint(0, classes, (batch,), generator=g, dtype=torch.int64))
    return xs, ys


def mlp():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def lenet():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


class LstmClassifier(nn.Module):
    """The `lstm_train` model: an LSTM over 32 steps of 64 features (hidden 128), then a dense
    layer to 10 classes on the last hidden state. Inputs come flat, like nnc's (32 x 64 values
    per sequence), and are viewed as [batch, 32, 64] without copying."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        states, _ = self.lstm(x.view(x.shape[0], 32, 64))
        return self.out(states[:, -1])


def iris():
    return nn.Sequential(
        nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)
    )


ADAM_IMPL = "default"


def adam(model):
    # "default" is the implementation PyTorch picks for CPU tensors (what a user gets);
    # "fused" is its single-kernel CPU Adam (`fused=True`), about twice as fast per step here.
    extra = {"fused": True} if ADAM_IMPL == "fused" else {}
    return torch.optim.Adam(
        model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, **extra
    )


def compiled(fn, mode):
    return torch.compile(fn, dynamic=False) if mode == "compile" else fn


def train_call(make_model, batch, features, classes, mode):
    torch.manual_seed(0)
    model = make_model()
    opt = adam(model)
    xs, ys = make_data(batch, features, classes)

    def loss_fn(x, y):
        # Fused, stable log-softmax + NLL, mean over the batch: the same loss as nnc's
        # softmax followed by cross_entropy.
        return F.cross_entropy(model(x), y)

    loss_fn = compiled(loss_fn, mode)
    opt_step = compiled(opt.step, mode)
    sink = [None]

    def call(i):
        k = i % BATCHES
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(xs[k], ys[k])
        loss.backward()
        opt_step()
        sink[0] = loss  # keep the result alive

    return call


def mlp_train(framework, mode, threads):
    for batch in (1, 32, 128, 1024):
        call = train_call(mlp, batch, 784, 10, mode)
        report_throughput(framework, "mlp_train", batch, threads, throughput(batch, call))


def mlp_infer(framework, mode, threads):
    torch.manual_seed(0)
    model = mlp().eval()

    def forward(x):
        return torch.softmax(model(x), dim=1)

    for batch in (1, 64):
        xs, _ = make_data(batch, 784, 10)
        fwd = compiled(forward, mode)
        sink = [None]

        def call(i, fwd=fwd, xs=xs, sink=sink):
            sink[0] = fwd(xs[i % BATCHES])

        # inference_mode is entered once, outside the timed calls (nnc has no autograd to skip).
        if batch == 1:
            with torch.inference_mode():
                result = latency(call)
            report_latency(framework, "mlp_infer", threads, result)
        else:
            with torch.inference_mode():
                result = throughput(batch, call)
            report_throughput(framework, "mlp_infer", batch, threads, result)


def iris_train(framework, mode, threads):
    call = train_call(iris, 32, 4, 3, mode)
    report_throughput(framework, "iris_train", 32, threads, throughput(32, call))


def cnn_train(framework, mode, threads):
    # Inputs are made flat like nnc's (the same 784 values per image); the model's first step
    # views them as 1x28x28 without copying.
    call = train_call(lenet, 64, 784, 10, mode)
    report_throughput(framework, "cnn_train", 64, threads, throughput(64, call))


def lstm_train(framework, mode, threads):
    call = train_call(LstmClassifier, 32, 32 * 64, 10, mode)
    report_throughput(framework, "lstm_train", 32, threads, throughput(32, call))


class CharLstm(nn.Module):
    """The `lstm_generate` model, `examples/char_lstm.nnc`'s CharLstm: a 128 x 64 embedding, two
    stacked LSTM layers of 256 units (dropout between them, off in inference), a dense layer to
    128 characters and a softmax."""

    def __init__(self):
        super().__init__()
        self.chars = nn.Embedding(128, 64)
        self.lstm = nn.LSTM(64, 256, num_layers=2, batch_first=True, dropout=0.1)
        self.out = nn.Linear(256, 128)

    def step(self, ids, state):
        """One position: ids [1, 1], state (h, c) each [2, 1, 256] or None."""
        h, state = self.lstm(self.chars(ids), state)
        return torch.softmax(self.out(h), dim=-1), state


def lstm_generate(framework, mode, threads):
    """Batch-1 latency of one step of generation, each step continuing the state of the one
    before, as nnc's `step` does (nn.LSTM called on one position with the carried state)."""
    torch.manual_seed(0)
    model = CharLstm().eval()
    step = compiled(model.step, mode)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 65, (64, 1, 1), generator=g)
    carried = [None]
    sink = [None]

    def call(i):
        probs, carried[0] = step(ids[i % 64], carried[0])
        sink[0] = probs

    with torch.inference_mode():
        result = latency(call)
    report_latency(framework, "lstm_generate", threads, result)


def gpt_train(framework, mode, threads):
    """The `storyteller` GPT at batch 12 on windows of 64 uniform ids below 65, as nnc's
    `gpt_train`: windows per second (and tokens per second)."""
    torch.manual_seed(0)
    model = gpt_pytorch.Gpt()
    opt = gpt_pytorch.adamw(model)
    step = compiled(lambda x, y: gpt_pytorch.train_step(model, opt, x, y), mode)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randint(0, 65, (12, 64), generator=g), torch.randint(0, 65, (12, 64), generator=g))
            for _ in range(BATCHES)]
    sink = [None]

    def call(i):
        sink[0] = step(*data[i % BATCHES])

    first, rate = throughput(12, call)
    report_throughput(framework, "gpt_train", 12, threads, (first, rate))
    print(f"gpt_train: {rate * 64:.0f} tokens/s", file=sys.stderr)


def gpt_generate(framework, mode, threads):
    """Batch-1 latency of one generated token, each continuing the sequence before and starting
    again when the 64 positions are full: `gpt_generate_nocache` runs the whole context again
    for every token (what nanoGPT's `generate` does), `gpt_generate` keeps each layer's keys and
    values (as nnc's step does)."""
    torch.manual_seed(0)
    model = gpt_pytorch.Gpt().eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 65, (1, 64), generator=g)
    state = {"t": 0, "caches": None}
    sink = [None]

    def cached(i):
        if state["t"] == 64 or state["caches"] is None:
            state["t"], state["caches"] = 0, [[None] for _ in range(gpt_pytorch.LAYERS)]
        t = state["t"]
        logits = model(ids[:, t:t + 1], start=t, caches=state["caches"])
        sink[0] = torch.softmax(logits[:, -1], dim=-1)
        state["t"] = t + 1

    def uncached(i):
        t = i % 64
        logits = model(ids[:, :t + 1])
        sink[0] = torch.softmax(logits[:, -1], dim=-1)

    with torch.inference_mode():
        for task, call in (("gpt_generate", cached), ("gpt_generate_nocache", uncached)):
            result = latency(call)
            report_latency(framework, task, threads, result)


def cnn_infer(framework, mode, threads):
    torch.manual_seed(0)
    model = lenet().eval()

    def forward(x):
        return torch.softmax(model(x), dim=1)

    fwd = compiled(forward, mode)
    xs, _ = make_data(1, 784, 10)
    sink = [None]

    def call(i):
        sink[0] = fwd(xs[i % BATCHES])

    # As for mlp_infer: inference_mode entered once, outside the timed calls.
    with torch.inference_mode():
        result = latency(call)
    report_latency(framework, "cnn_infer", threads, result)


TASKS = {
    "mlp_train": mlp_train,
    "mlp_infer": mlp_infer,
    "iris_train": iris_train,
    "cnn_train": cnn_train,
    "cnn_infer": cnn_infer,
    "lstm_train": lstm_train,
    "lstm_generate": lstm_generate,
    "gpt_train": gpt_train,
    "gpt_generate": gpt_generate,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="all", choices=[*TASKS, "all"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", default="eager", choices=["eager", "compile", "both"],
                   help="eager PyTorch, torch.compile, or both (eager first)")
    p.add_argument("--adam", default="default", choices=["default", "fused"],
                   help="Adam implementation; 'fused' adds '_fused_adam' to the framework name")
    args = p.parse_args()
    global ADAM_IMPL
    ADAM_IMPL = args.adam

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    for mode in modes:
        framework = "pytorch" if mode == "eager" else "pytorch_compile"
        if args.adam == "fused":
            framework += "_fused_adam"
        for task in tasks:
            TASKS[task](framework, mode, args.threads)


if __name__ == "__main__":
    main()
