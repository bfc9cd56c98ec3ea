#!/usr/bin/env python3
"""Builds the int8 text recognizer from PP-OCRv6_rec_small.onnx.

Static post-training quantization of the convolutions (about three quarters of the recognizer's
time), in ONNX Runtime's QDQ format: int8 per-channel weights, uint8 activations, MinMax ranges.
The attention and the head stay in float: quantizing them too lost three of the 26 MRZ dev
documents. The activation ranges are calibrated on synthetic text-line crops rendered here from a
fixed seed (MRZ lines of the three ICAO formats plus visual-zone-like text), so no real document
is needed and the MRZ dev set stays a held-out check (`idverify eval mrz`).

The classifier head (a 120 x 18710 MatMul, one column per dictionary character) is cut down to the
CTC blank, the 37 MRZ characters and the trailing space, and the dictionary in the metadata
(`character`) is cut to match: the reader decodes only those classes anyway, and the full head is
about a tenth of the recognizer's time. Its softmax then spreads over those classes only.

The exported model adds each convolution's bias with a separate Add after a bias-less Conv. ONNX
Runtime fuses the two in a float model, but the quantizer puts its QuantizeLinear/DequantizeLinear
pair between them, so the 54 Adds then ran in float on whole activation maps (a fifth of the int8
recognizer's time): the biases are folded into the convolutions before quantizing. Likewise the
erf-based GELUs (Div, Erf, Add, Mul, Mul) become one `com.microsoft.Gelu` node: ONNX Runtime fuses
them in a float model, but not once the quantizer gives each consumer of a convolution's output its
own DequantizeLinear.

With `--alphabet latin` the head keeps the Latin script instead of the MRZ alphabet: the ASCII
letters, digits and punctuation, the accented letters of Latin-1 and Latin Extended-A, and a few
signs printed on cards (`°`, `º`, `’`, `«`, `»`). That model reads the visual zone of card fronts.

Usage: quantize_rec.py SRC.onnx OUT.onnx [--alphabet mrz|latin]
Needs numpy, onnx, onnxruntime (its quantization module: ml_dtypes, packaging) and Pillow.
"""
import os
import string
import sys

import numpy as np
import onnx
from onnx import numpy_helper, version_converter
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from PIL import Image, ImageDraw, ImageFilter, ImageFont

MRZ_ALPHABET = set(string.ascii_uppercase + string.digits + "<")
LATIN_ALPHABET = (set(string.ascii_letters + string.digits + string.punctuation)
                  | {chr(c) for c in range(0xC0, 0x180) if chr(c) not in "\u00d7\u00f7"}
                  | set("°º’«»"))
REC_HEIGHT = 48
CALIBRATION_CROPS = 96
SEED = 20261126


def prune_head(model, alphabet):
    """Keeps the blank, the alphabet's characters and the space in the classifier head and dictionary."""
    meta = {p.key: p.value for p in model.metadata_props}
    chars = [""] + meta["character"].splitlines() + [" "]
    wanted = MRZ_ALPHABET if alphabet == "mrz" else LATIN_ALPHABET
    keep = [i for i, c in enumerate(chars) if i == 0 or i == len(chars) - 1 or c in wanted]
    if alphabet == "mrz" and len(keep) != 39:
        sys.exit(f"expected 37 MRZ characters in the dictionary, found {len(keep) - 2}")
    if alphabet == "latin" and len(keep) < 2 + len(string.ascii_letters + string.digits):
        sys.exit(f"the dictionary lacks Latin characters ({len(keep) - 2} found)")
    graph = model.graph
    softmax = [n for n in graph.node if n.op_type == "Softmax"][-1]
    inits = {t.name: t for t in graph.initializer}
    # Softmax <- (Identity) <- Add(bias) <- MatMul(weight): find the head's two constants.
    producers = {o: n for n in graph.node for o in n.output}
    node = producers[softmax.input[0]]
    while node.op_type == "Identity":
        node = producers[node.input[0]]
    assert node.op_type == "Add", node.op_type
    bias_name = next(i for i in node.input if i in inits)
    matmul = producers[next(i for i in node.input if i not in inits)]
    assert matmul.op_type == "MatMul", matmul.op_type
    weight_name = next(i for i in matmul.input if i in inits)
    weight = numpy_helper.to_array(inits[weight_name])
    bias = numpy_helper.to_array(inits[bias_name])
    if weight.shape[1] != len(chars) or bias.shape[0] != len(chars):
        sys.exit(f"head has {weight.shape[1]} classes, dictionary {len(chars)}")
    inits[weight_name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight[:, keep]), weight_name))
    inits[bias_name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(bias[keep]), bias_name))
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        if len(dims) == 3:
            dims[2].Clear()
            dims[2].dim_value = len(keep)
    # Stale inferred shapes of the old head would contradict the new one.
    del graph.value_info[:]
    for p in model.metadata_props:
        if p.key == "character":
            p.value = "\n".join(chars[i] for i in keep[1:-1])
    return model


def mrz_line(rng, length):
    letters = string.ascii_uppercase
    kind = rng.integers(3)
    if kind == 0:  # names line: document code, country, surname << given names, fillers
        name = "".join(rng.choice(list(letters), rng.integers(3, 12)))
        given = "<".join("".join(rng.choice(list(letters), rng.integers(2, 9))) for _ in range(rng.integers(1, 3)))
        text = "P<" + "".join(rng.choice(list(letters), 3)) + name + "<<" + given
    elif kind == 1:  # numbers line: document number, dates, check digits
        text = "".join(rng.choice(list(letters + string.digits), 9)) + str(rng.integers(10)) + \
            "".join(rng.choice(list(letters), 3)) + "".join(rng.choice(list(string.digits), 7)) + \
            rng.choice(["M", "F", "<"]) + "".join(rng.choice(list(string.digits), 7))
    else:  # anything in the MRZ alphabet
        text = "".join(rng.choice(sorted(MRZ_ALPHABET), length))
    return (text + "<" * length)[:length]


def viz_line(rng):
    words = ["PASSPORT", "Surname", "Given names", "Nationality", "Date of birth", "Sex", "Place of birth",
             "Date of issue", "Authority", "Date of expiry", "Signature", "UTOPIA", "REPUBLIC"]
    parts = [str(rng.choice(words)) for _ in range(rng.integers(1, 4))]
    if rng.random() < 0.5:
        parts.append(f"{rng.integers(1, 29):02d} {rng.choice(['JAN', 'FEB', 'MAR', 'JUL', 'DEC'])} "
                     f"{rng.integers(1940, 2035)}")
    return " / ".join(parts)


def render(rng, text):
    """A text-line crop like the reader's: text filling most of the height, light paper, blur."""
    size = int(rng.integers(28, 44))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    pad_x, pad_y = int(rng.integers(2, 14)), int(rng.integers(3, 10))
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    paper = rng.integers(170, 250, 3)
    tint = rng.integers(-25, 25, 3) if rng.random() < 0.6 else np.zeros(3, int)
    background = np.clip(paper + tint, 0, 255)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in background))
    ink = int(rng.integers(0, 90))
    ImageDraw.Draw(img).text((pad_x - left, pad_y - top), text, font=font, fill=(ink, ink, ink))
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.4))))
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0, rng.uniform(0, 8), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    width = int(np.clip(round(REC_HEIGHT * w / h), REC_HEIGHT, 2400))
    return img.resize((width, REC_HEIGHT), Image.BILINEAR)


def to_input(img):
    # The reader's preprocessing: BGR, (x / 255 - 0.5) / 0.5, NCHW.
    arr = np.asarray(img).astype(np.float32)[:, :, ::-1] / 127.5 - 1.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


class SyntheticLines(CalibrationDataReader):
    def __init__(self, input_name):
        rng = np.random.default_rng(SEED)
        self.items = []
        for i in range(CALIBRATION_CROPS):
            text = viz_line(rng) if i % 4 == 3 else mrz_line(rng, int(rng.choice([30, 36, 44])))
            self.items.append({input_name: to_input(render(rng, text))})
        self.index = 0

    def get_next(self):
        if self.index >= len(self.items):
            return None
        self.index += 1
        return self.items[self.index - 1]


def fold_conv_bias(model):
    """Turns every bias-less Conv followed by an Add of a per-channel constant into one Conv."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    folded = []
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        conv = producers.get(add.input[0])
        const = inits.get(add.input[1])
        if conv is None or conv.op_type != "Conv" or len(conv.input) != 2 or const is None:
            continue
        bias = numpy_helper.to_array(const)
        channels = inits[conv.input[1]].dims[0]
        if consumers.get(add.input[0]) != 1 or bias.size != channels or bias.shape[1:] not in ((channels, 1, 1), ()):
            continue
        bias_name = conv.name + "_folded_bias"
        graph.initializer.append(numpy_helper.from_array(bias.reshape(channels).astype(np.float32), bias_name))
        conv.input.append(bias_name)
        conv.output[0] = add.output[0]
        folded.append(add)
    for add in folded:
        graph.node.remove(add)
    used = {i for n in graph.node for i in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    print(f"folded {len(folded)} convolution biases", file=sys.stderr)
    return model


def fuse_gelu(model):
    """Replaces every x * 0.5 * (1 + erf(x / sqrt(2))) subgraph by one com.microsoft.Gelu node."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def const(node, value):
        return any(i in inits and np.allclose(numpy_helper.to_array(inits[i]), value, rtol=1e-6) for i in node.input)

    def only_consumer(node, op_type):
        users = consumers.get(node.output[0], [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    fused = 0
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        div = producers.get(erf.input[0])
        if div is None or div.op_type != "Div" or not const(div, np.sqrt(2.0)):
            continue
        x = div.input[0]
        add = only_consumer(erf, "Add")
        mul = add and only_consumer(add, "Mul")
        half = mul and only_consumer(mul, "Mul")
        if not (add and const(add, 1.0) and mul and x in mul.input and half and const(half, 0.5)):
            continue
        gelu = onnx.helper.make_node("Gelu", [x], [half.output[0]], name=erf.name + "_gelu", domain="com.microsoft")
        graph.node.insert(list(graph.node).index(half), gelu)
        for n in (div, erf, add, mul, half):
            graph.node.remove(n)
        fused += 1
    if fused:
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    print(f"fused {fused} GELUs", file=sys.stderr)
    return model


def main():
    args = sys.argv[1:]
    alphabet = "mrz"
    if len(args) == 4 and args[2] == "--alphabet" and args[3] in ("mrz", "latin"):
        alphabet = args[3]
        args = args[:2]
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    model = fold_conv_bias(prune_head(onnx.load(src), alphabet))
    # Per-channel QDQ needs opset >= 13 (the exported model is opset 11).
    model = fuse_gelu(version_converter.convert_version(model, 17))
    staged = out + ".float.onnx"
    onnx.save(model, staged)
    quantize_static(staged, out, SyntheticLines(model.graph.input[0].name), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax,
                    op_types_to_quantize=["Conv"])
    os.remove(staged)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
