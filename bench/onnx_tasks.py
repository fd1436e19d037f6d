#!/usr/bin/env python3
"""ONNX Runtime side of nnc's standard benchmark tasks (see bench/README.md): `mlp_infer`
(batch-1 latency, batch-64 throughput) of the 784-128-10 MLP with a softmax output, and
`cnn_infer` (batch-1 latency of the LeNet-like `cnn_train` model), printing the JSON lines of
examples/bench_tasks.rs with "framework" set to "onnxruntime". ONNX Runtime is an inference
engine, so it has no training tasks.

    taskset -c 0   python bench/onnx_tasks.py --threads 1
    taskset -c 0,1 python bench/onnx_tasks.py --threads 2

The graphs are built with onnx.helper in PyTorch's layouts (nn.Linear weights [out, in] with
transB=1, nn.Conv2d weights [out, in, kh, kw]) and run with all graph optimizations, `threads`
intra-op threads and one inter-op thread.
"""

import argparse

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from timing import BATCHES, latency, report_latency, report_throughput, throughput


def parameters(rng, name, fan_in, shape):
    """PyTorch's default initialisation, U(±1/√fan_in), for a weight of `shape` and its bias."""
    bound = 1.0 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, shape).astype(np.float32)
    b = rng.uniform(-bound, bound, shape[0]).astype(np.float32)
    return [numpy_helper.from_array(w, f"{name}.weight"),
            numpy_helper.from_array(b, f"{name}.bias")]


def serialized(nodes, name, inputs, outputs, initializer):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializer)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def mlp_graph():
    rng = np.random.default_rng(0)

    def linear(name, fan_in, fan_out):
        return parameters(rng, name, fan_in, (fan_out, fan_in))

    nodes = [
        helper.make_node("Gemm", ["x", "hidden.weight", "hidden.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "out.weight", "out.bias"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    return serialized(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        linear("hidden", 784, 128) + linear("out", 128, 10),
    )


def lenet_graph():
    """The `cnn_train` model: flat 784-value images viewed as 1x28x28, two 5x5 convolutions
    with relu and 2x2 max pooling, dense 120, 84 and 10, softmax."""
    rng = np.random.default_rng(0)
    shape = numpy_helper.from_array(np.array([-1, 1, 28, 28], dtype=np.int64), "image_shape")
    init = [shape]
    init += parameters(rng, "c1", 25, (6, 1, 5, 5))
    init += parameters(rng, "c2", 150, (16, 6, 5, 5))
    init += parameters(rng, "f1", 256, (120, 256))
    init += parameters(rng, "f2", 120, (84, 120))
    init += parameters(rng, "out", 84, (10, 84))
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Reshape", ["x", "image_shape"], ["image"]),
        helper.make_node("Conv", ["image", "c1.weight", "c1.bias"], ["c1"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], **pool),
        helper.make_node("Conv", ["p1", "c2.weight", "c2.bias"], ["c2"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], **pool),
        helper.make_node("Flatten", ["p2"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "f1.weight", "f1.bias"], ["z1"], transB=1),
        helper.make_node("Relu", ["z1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "f2.weight", "f2.bias"], ["z2"], transB=1),
        helper.make_node("Relu", ["z2"], ["a2"]),
        helper.make_node("Gemm", ["a2", "out.weight", "out.bias"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    return serialized(
        nodes, "lenet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        init,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="all", choices=["mlp_infer", "cnn_infer", "all"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    framework = "onnxruntime"
    rng = np.random.default_rng(0)

    def session(graph):
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def runner(sess, batch):
        xs = [rng.standard_normal((batch, 784), dtype=np.float32) for _ in range(BATCHES)]
        sink = [None]

        def call(i):
            sink[0] = sess.run(None, {"x": xs[i % BATCHES]})[0]

        return call

    if args.task in ("mlp_infer", "all"):
        mlp = session(mlp_graph())
        report_latency(framework, "mlp_infer", args.threads, latency(runner(mlp, 1)))
        report_throughput(framework, "mlp_infer", 64, args.threads,
                          throughput(64, runner(mlp, 64)))
    if args.task in ("cnn_infer", "all"):
        lenet = session(lenet_graph())
        report_latency(framework, "cnn_infer", args.threads, latency(runner(lenet, 1)))


if __name__ == "__main__":
    main()
