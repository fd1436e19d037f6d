#!/usr/bin/env python3
"""PyTorch side of nnc's GPT tasks: the `storyteller` example's model (nanoGPT's character-level
recipe: 4 layers, 4 heads, embedding 128, context 64, no biases, tied weights) written here in
plain PyTorch, for `gpt_train` and `gpt_generate` (imported by pytorch_tasks.py) and for the
whole 2000-iteration Tiny Shakespeare run:

    taskset -c 0,1 python bench/gpt_pytorch.py --run ../shared/data/tinyshakespeare/input.txt --threads 2

The run follows the recipe as `examples/storyteller.rs` does: batches of 12 random windows of
the first 90% of the characters, AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on tensors
of two or more axes, eps 1e-8), gradient clipping at 1.0, linear warm-up over 100 iterations
then a cosine to 1e-4 at iteration 2000; it prints the wall time of the training loop and the
validation loss estimated over 200 random batches, as a JSON line.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, CONTEXT, WIDTH, HEADS, LAYERS, BATCH = 65, 64, 128, 4, 4, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(WIDTH, bias=False)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH, bias=False)
        self.out = nn.Linear(WIDTH, WIDTH, bias=False)
        self.ln_2 = nn.LayerNorm(WIDTH, bias=False)
        self.fc = nn.Linear(WIDTH, 4 * WIDTH, bias=False)
        self.proj = nn.Linear(4 * WIDTH, WIDTH, bias=False)

    def attend(self, x, cache=None):
        """Causal self-attention over x [B, T, D]; with `cache` (a list holding the keys and
        values of the earlier positions, or None), x holds the new positions only."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(WIDTH, dim=2)
        heads = lambda z: z.view(b, -1, HEADS, WIDTH // HEADS).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        causal = True
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0][0], k], dim=2)
                v = torch.cat([cache[0][1], v], dim=2)
                causal = t > 1
            cache[0] = (k, v)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out(y.transpose(1, 2).contiguous().view(b, t, WIDTH))

    def forward(self, x, cache=None):
        x = x + self.attend(self.ln_1(x), cache)
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab=VOCAB):
        super().__init__()
        self.wte = nn.Embedding(vocab, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(WIDTH, bias=False)
        # nanoGPT's initialisation: N(0, 0.02) everywhere, the residual projections scaled by
        # 1/sqrt(2 * layers); the output projection is the token table.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith(("out.weight", "proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids, start=0, caches=None):
        pos = torch.arange(start, start + ids.shape[1])
        x = self.wte(ids) + self.wpe(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return F.linear(self.ln_f(x), self.wte.weight)


def adamw(model, lr=1e-3):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))


def train_step(model, opt, x, y):
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def lr_at(it, warmup=100, decay=2000, lr=1e-3, min_lr=1e-4):
    if it < warmup:
        return lr * (it + 1) / warmup
    ratio = min(1.0, (it - warmup) / max(1, decay - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * ratio))


def run(path, threads, iterations):
    torch.set_num_threads(threads)
    torch.manual_seed(1337)
    text = open(path, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = len(data) * 9 // 10
    train, val = data[:cut], data[cut:]

    def batch(split):
        starts = torch.randint(len(split) - CONTEXT, (BATCH,))
        x = torch.stack([split[s:s + CONTEXT] for s in starts])
        y = torch.stack([split[s + 1:s + 1 + CONTEXT] for s in starts])
        return x, y

    model = Gpt(len(chars))
    opt = adamw(model)
    start = time.perf_counter()
    for it in range(iterations):
        for g in opt.param_groups:
            g["lr"] = lr_at(it, decay=iterations)
        train_step(model, opt, *batch(train))
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        losses = []
        for _ in range(200):
            x, y = batch(val)
            logits = model(x)
            losses.append(F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1)).item())
    print(json.dumps({"framework": "pytorch", "task": "gpt_run", "threads": threads,
                      "iterations": iterations, "seconds": round(seconds, 2),
                      "val_loss_200": round(sum(losses) / len(losses), 4)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", metavar="CORPUS", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iterations", type=int, default=2000)
    args = p.parse_args()
    run(args.run, args.threads, args.iterations)


if __name__ == "__main__":
    sys.exit(main())
