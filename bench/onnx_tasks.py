#!/usr/bin/env python3
"""ONNX Runtime side of nnc's standard benchmark tasks (see bench/README.md): `mlp_infer`
(batch-1 latency, batch-64 throughput) of the 784-128-10 MLP with a softmax output, printing
the JSON lines of examples/bench_tasks.rs with "framework" set to "onnxruntime". ONNX Runtime
is an inference engine, so it has no training tasks.

    taskset -c 0   python bench/onnx_tasks.py --threads 1
    taskset -c 0,1 python bench/onnx_tasks.py --threads 2

The graph (Gemm, Relu, Gemm, Softmax) is built with onnx.helper with PyTorch's nn.Linear
layout (weights [out, in], transB=1) and run with all graph optimizations, `threads`
intra-op threads and one inter-op thread.
"""

import argparse

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from timing import BATCHES, latency, report_latency, report_throughput, throughput


def mlp_graph():
    rng = np.random.default_rng(0)

    def linear(name, fan_in, fan_out):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        return [numpy_helper.from_array(w, f"{name}.weight"),
                numpy_helper.from_array(b, f"{name}.bias")]

    nodes = [
        helper.make_node("Gemm", ["x", "hidden.weight", "hidden.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "out.weight", "out.bias"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        initializer=linear("hidden", 784, 128) + linear("out", 128, 10),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="all", choices=["mlp_infer", "all"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(mlp_graph(), options, providers=["CPUExecutionProvider"])
    framework = "onnxruntime"
    rng = np.random.default_rng(0)
    for batch in (1, 64):
        xs = [rng.standard_normal((batch, 784), dtype=np.float32) for _ in range(BATCHES)]
        sink = [None]

        def call(i, xs=xs, sink=sink):
            sink[0] = session.run(None, {"x": xs[i % BATCHES]})[0]

        if batch == 1:
            report_latency(framework, "mlp_infer", args.threads, latency(call))
        else:
            report_throughput(framework, "mlp_infer", batch, args.threads,
                              throughput(batch, call))


if __name__ == "__main__":
    main()
