"""CPU cost of a text recognizer per line-crop width, one line at a time and in padded batches.

Reproduces BENCHMARKS.md's session-10 figures for the card-front recognizer: cost linear in the
crop's width with no per-run overhead for batching to save, and another recognizer compared in the
same minute. Random 48-pixel-high crops (the cost does not depend on the pixels); CPU time of this
process; one ONNX Runtime thread, as the server runs each engine session.

  python3 scripts/recognizer_cost.py [MODEL.onnx ...]

Defaults to models/PP-OCRv6_rec_small_int8_latin.onnx. Needs numpy and onnxruntime (the models
venv of `make models`). PP-OCRv4's mobile recognizer is `rapidocr_onnxruntime/models/
ch_PP-OCRv4_rec_infer.onnx` in PyPI `rapidocr_onnxruntime==1.3.24`.
"""

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
# Widths of a front's line crops at height 48, about 13 lines as on the synthetic dev fronts.
LINE_WIDTHS = [120, 160, 200, 240, 300, 350, 420, 500, 180, 140, 260, 320, 600]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def cpu_ms(run, repeat):
    run()  # warm-up
    start = time.process_time()
    for _ in range(repeat):
        run()
    return (time.process_time() - start) * 1000 / repeat


def main():
    models = sys.argv[1:] or [ROOT / "models" / "PP-OCRv6_rec_small_int8_latin.onnx"]
    rng = np.random.default_rng(0)
    for model in models:
        s = session(model)
        name = s.get_inputs()[0].name
        crop = lambda w, n=1: rng.uniform(-1, 1, (n, 3, 48, w)).astype(np.float32)  # noqa: E731
        for w in (100, 200, 400, 800):
            x = crop(w)
            print(f"{Path(model).name} width={w} cpu_ms={cpu_ms(lambda: s.run(None, {name: x}), 10):.2f}")
        lines = [crop(w) for w in LINE_WIDTHS]
        one_by_one = cpu_ms(lambda: [s.run(None, {name: x}) for x in lines], 5)
        print(f"{Path(model).name} lines={len(lines)} one_at_a_time_ms={one_by_one:.1f}")
        order = sorted(range(len(lines)), key=lambda i: LINE_WIDTHS[i])
        for size in (2, 4, len(lines)):
            groups = [order[k : k + size] for k in range(0, len(order), size)]
            batches = []
            for group in groups:
                batch = np.zeros((len(group), 3, 48, max(LINE_WIDTHS[i] for i in group)), np.float32)
                for j, i in enumerate(group):
                    batch[j, :, :, : LINE_WIDTHS[i]] = lines[i][0]
                batches.append(batch)
            ms = cpu_ms(lambda: [s.run(None, {name: b}) for b in batches], 5)
            print(f"{Path(model).name} lines={len(lines)} batch={size} padded_ms={ms:.1f}")


if __name__ == "__main__":
    main()
