#!/usr/bin/env python3
"""JAX side of nnc's standard benchmark tasks (see bench/README.md): `mlp_train` (batch 1, 32,
128, 1024) and `mlp_infer` (batch-1 latency, batch-64 throughput) with `jax.jit`, printing the
JSON lines of examples/bench_tasks.rs with "framework" set to "jax_jit".

    taskset -c 0   python bench/jax_tasks.py --task all --threads 1
    taskset -c 0,1 python bench/jax_tasks.py --task all --threads 2

The whole training step (forward, cross-entropy, gradients and Adam with PyTorch's update
rule and defaults, lr 1e-3) is one jitted function, called with the parameters and optimizer
state as arguments and donated, so XLA updates them in place. The first call (the compile) is
timed on its own; each timed call waits for its result (`block_until_ready`).
"""

import argparse
import os


def set_threads(threads):
    # XLA's CPU client sizes its pools from the machine, not from taskset; one thread means
    # no intra-op parallelism at all. Must run before jax is imported.
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="all", choices=["mlp_train", "mlp_infer", "iris_train", "all"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    set_threads(args.threads)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from timing import BATCHES, latency, report_latency, report_throughput, throughput

    jax.config.update("jax_platforms", "cpu")
    framework = "jax_jit"

    def init(key, sizes):
        """PyTorch's nn.Linear initialisation: uniform in ±1/sqrt(fan_in) for both."""
        params = []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            key, kw, kb = jax.random.split(key, 3)
            bound = 1.0 / np.sqrt(fan_in)
            w = jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound)
            b = jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound)
            params.append((w, b))
        return params

    def logits(params, x):
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def loss_fn(params, x, y):
        logp = jax.nn.log_softmax(logits(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8

    def step(params, m, v, t, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = jax.tree.map(
            lambda p, m, v: p - lr / c1 * m / (jnp.sqrt(v) / jnp.sqrt(c2) + eps), params, m, v
        )
        return params, m, v, t, loss

    step = jax.jit(step, donate_argnums=(0, 1, 2))

    def data(batch, features, classes):
        rng = np.random.default_rng(0)
        xs = [jnp.asarray(rng.standard_normal((batch, features), dtype=np.float32))
              for _ in range(BATCHES)]
        ys = [jnp.asarray(rng.integers(0, classes, batch, dtype=np.int32))
              for _ in range(BATCHES)]
        return xs, ys

    def train(task, sizes, batches):
        for batch in batches:
            xs, ys = data(batch, sizes[0], sizes[-1])
            state = [init(jax.random.PRNGKey(0), sizes)]
            state.append(jax.tree.map(jnp.zeros_like, state[0]))
            state.append(jax.tree.map(jnp.zeros_like, state[0]))
            state.append(jnp.float32(0.0))

            def call(i, state=state, xs=xs, ys=ys):
                k = i % BATCHES
                params, m, v, t, loss = step(*state, xs[k], ys[k])
                state[:] = [params, m, v, t]
                loss.block_until_ready()

            report_throughput(framework, task, batch, args.threads, throughput(batch, call))

    def infer():
        params = init(jax.random.PRNGKey(0), (784, 128, 10))
        forward = jax.jit(lambda params, x: jax.nn.softmax(logits(params, x), axis=1))
        for batch in (1, 64):
            xs, _ = data(batch, 784, 10)

            def call(i, xs=xs):
                forward(params, xs[i % BATCHES]).block_until_ready()

            if batch == 1:
                report_latency(framework, "mlp_infer", args.threads, latency(call))
            else:
                report_throughput(framework, "mlp_infer", batch, args.threads,
                                  throughput(batch, call))

    tasks = ["mlp_train", "mlp_infer", "iris_train"] if args.task == "all" else [args.task]
    for task in tasks:
        if task == "mlp_train":
            train(task, (784, 128, 10), (1, 32, 128, 1024))
        elif task == "mlp_infer":
            infer()
        else:
            train(task, (4, 64, 64, 3), (32,))


if __name__ == "__main__":
    main()
