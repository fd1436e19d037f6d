#!/usr/bin/env python3
"""PyTorch twin of nnc's `lenet` example (examples/lenet.rs), for comparing 10-epoch wall times.

It trains the model of tests/fixtures/ok/lenet.nnc on MNIST with the recipe the example hands
to nnc's `fit` (nnc-train/src/fit.rs) and reports the same figures:

* Data: the four MNIST IDX files, read with gzip and numpy (nothing is downloaded), pixels
  scaled from 0..255 to [0, 1] with no mean/std normalisation (as nnc's `mnist` loader does);
  60000 training and 10000 test images.
* Model: conv 5x5 -> 6 (no padding), relu, max pool 2; conv 5x5 -> 16, relu, max pool 2;
  flatten (256); dense 120 relu; dense 84 relu; dense 10; softmax + cross entropy, computed
  here by the fused `F.cross_entropy` on the logits. 44,426 parameters, as in nnc.
* Initialisation (`--init nnc`, the default): the distributions nnc's compiler picks for this
  model (He normal, fan-in, for the four layers that feed a relu; Xavier uniform for the last
  dense layer; zero biases), drawn from PyTorch's generator seeded 0, so the values differ
  from nnc's. `--init pytorch` keeps PyTorch's default layer initialisation instead.
* Training: Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay), batches of 64, the
  last partial batch of 32 kept (938 steps per epoch), the training set reshuffled before
  every epoch (torch generator seeded 0; nnc's own generator gives another order).
* Learning rate: cosine annealing from 1e-3 towards 1e-5 with the period equal to the number
  of epochs, set once per epoch (not per step), before the epoch:
  lr(e) = 1e-5 + (1e-3 - 1e-5) * (1 + cos(pi * e / epochs)) / 2 for e = 0 .. epochs-1, the
  closed form of CosineAnnealingLR(T_max=epochs, eta_min=1e-5) stepped per epoch. The last
  epoch therefore runs at about 3.4e-5, not 1e-5, exactly as in nnc.
* Per epoch it prints the mean training loss and accuracy (from the training forward passes,
  weighted by samples), the test loss and accuracy (evaluated in batches of 64, as `fit`
  validates with the training batch size), the training images per second (training steps
  only: the timer starts after the shuffle and stops before the test evaluation) and the rate.
* Wall time: from just before the first epoch to just after the last epoch's test
  evaluation, i.e. what the example's `fit` call spans: the per-epoch test evaluations are
  included, while data loading, model construction and the final evaluation are not. After
  it, the test set is evaluated once more in batches of 1000 (untimed) and the last line is
  `test accuracy XX.XX%`, as nnc prints it.

Run it (two threads; nnc's side would use NNC_NUM_THREADS=2):

    /tmp/torchvenv/bin/python bench/lenet_pytorch.py --threads 2
    taskset -c 0 /tmp/torchvenv/bin/python bench/lenet_pytorch.py --threads 1 --epochs 1

The data directory is `--data DIR`, else `$NNC_DATA/mnist` or `$NNC_DATA`, else
`../shared/data/mnist` next to the repository (as the nnc example looks for it).
"""

import argparse
import gzip
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH = 64
EVAL_BATCH = 1000
LR_BASE = 1e-3
LR_MIN = 1e-5
REPO = Path(__file__).resolve().parent.parent


def data_dir(argument):
    """The directory named on the command line, `$NNC_DATA` (or its `mnist` folder), or the
    shared data folder beside the repository."""
    if argument:
        return Path(argument)
    env = os.environ.get("NNC_DATA")
    if env:
        nested = Path(env) / "mnist"
        return nested if nested.is_dir() else Path(env)
    return REPO.parent / "shared" / "data" / "mnist"


def fail(message):
    """Prints `message` to stderr and exits with status 2, as the nnc example does."""
    print(message, file=sys.stderr)
    sys.exit(2)


def read_idx(path):
    """An IDX file of unsigned bytes (gzipped or not) as a numpy array of its dimensions."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        fail(f"error: {path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        fail(f"error: {path} holds {body.size} bytes, its header announces {dims}")
    return body.reshape(dims)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    fail(
        f"error: no {stem}.gz (or {stem}) in {directory}\n"
        "help: pass the directory holding the four MNIST IDX files with --data, or set NNC_DATA"
    )


def load_split(directory, prefix):
    """Images as float32 [n, 1, 28, 28] in [0, 1] and labels as int64 [n]."""
    images = read_idx(find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        fail(f"error: the {prefix} images {images.shape} and labels {labels.shape} disagree")
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x.contiguous(), y


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def nnc_init(model):
    """The initialisers nnc's compiler chooses for lenet.nnc: He normal (fan-in, relu gain)
    for every layer followed by a relu, Xavier uniform for the output layer, zero biases."""
    layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for layer in layers[:-1]:
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            layer.bias.zero_()
        nn.init.xavier_uniform_(layers[-1].weight)
        layers[-1].bias.zero_()


def cosine_lr(epoch, epochs):
    """nnc's `Cosine { base: 1e-3, min: 1e-5, period: epochs }` at a 0-based epoch."""
    if epoch >= epochs:
        return LR_MIN
    return LR_MIN + (LR_BASE - LR_MIN) * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


@torch.inference_mode()
def evaluate(model, x, y, batch):
    """Mean loss, correct count and sample count over (x, y), in order, in batches."""
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), batch):
        logits = model(x[start:start + batch])
        target = y[start:start + batch]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(1) == target).sum())
    return loss_sum / len(x), correct, len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="directory of the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--init", default="nnc", choices=["nnc", "pytorch"],
                   help="nnc's initialiser distributions (default) or PyTorch's defaults")
    p.add_argument("--adam", default="default", choices=["default", "fused"],
                   help="PyTorch's default CPU Adam or its single-kernel `fused=True` one")
    args = p.parse_args()
    if args.epochs < 1 or args.threads < 1:
        p.error("--epochs and --threads must be at least 1")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)

    directory = data_dir(args.data)
    train_x, train_y = load_split(directory, "train")
    test_x, test_y = load_split(directory, "t10k")

    torch.manual_seed(0)
    model = lenet()
    if args.init == "nnc":
        nnc_init(model)
    extra = {"fused": True} if args.adam == "fused" else {}
    opt = torch.optim.Adam(
        model.parameters(), lr=LR_BASE, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, **extra
    )
    shuffler = torch.Generator().manual_seed(0)
    params = sum(t.numel() for t in model.parameters())
    print(
        f"lenet (PyTorch {torch.__version__}, {args.threads} thread(s), init {args.init}, "
        f"adam {args.adam}): {len(train_x)} training and {len(test_x)} test images from "
        f"{directory}, {params} parameters",
        flush=True,
    )

    n = len(train_x)
    speeds = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        lr = cosine_lr(epoch, args.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        order = torch.randperm(n, generator=shuffler)

        model.train()
        began = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for first in range(0, n, BATCH):
            rows = order[first:first + BATCH]
            x, y = train_x[rows], train_y[rows]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(rows)
                correct += (logits.argmax(1) == y).sum()
        seconds = time.perf_counter() - began

        model.eval()
        val_loss, val_correct, val_count = evaluate(model, test_x, test_y, BATCH)
        speed = n / max(seconds, 1e-9)
        speeds.append(speed)
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {loss_sum.item() / n:.4f}  "
            f"acc {100.0 * correct.item() / n:.2f}%  val_loss {val_loss:.4f}  "
            f"val_acc {100.0 * val_correct / val_count:.2f}%  {speed:.0f} samples/s  "
            f"lr {lr:.2e}",
            flush=True,
        )
    wall = time.perf_counter() - start

    test_loss, test_correct, test_count = evaluate(model, test_x, test_y, EVAL_BATCH)
    print(
        f"trained in {wall:.1f} s at {sum(speeds) / len(speeds):.0f} images/s on average; "
        f"test loss {test_loss:.4f} ({test_correct} of {test_count} right)"
    )
    print(f"test accuracy {100.0 * test_correct / test_count:.2f}%")


if __name__ == "__main__":
    main()
