#!/usr/bin/python3
"""Runs one MONAI-equivalent transform written in NumPy/PyTorch (the "twin") for Barton's tests.

usage: /usr/bin/python3 run.py REQUEST.json

REQUEST.json:
  {"transform": "Spacingd",                 # a name in spatial / intensity / deepgrow .TRANSFORMS
   "args": {...},                           # MONAI's dictionary-transform arguments, as in a config
   "params": {...},                         # explicit values for what MONAI would draw at random
   "inputs": {"image": {"raw": "/tmp/x/image.f64", "shape": [1, 40, 30, 20],
                        "affine": [[...4 values...] x 4], "dtype": "float32"}, ...},
   "output_dir": "/tmp/x/out"}
Each input is little-endian float64 in Barton's layout ([C, I, J, K] or [C, I, J], C order); "dtype"
is the tensor dtype Barton holds (MONAI's output dtype rules depend on it).
Writes output_dir/<n>_<key>.f64 (n = sample index; one sample unless the transform returns a list)
and prints {"outputs": [{"image": {"shape": [...], "affine": [[...]], "dtype": "float32"}, ...}, ...]}.
Non-tensor outputs (e.g. crop coordinates) go in the sample as plain JSON values.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepedit  # noqa: E402
import deepgrow  # noqa: E402
import intensity  # noqa: E402
import spatial  # noqa: E402


class Item:
    """One tensor of a sample: data [C, *spatial] float64 array, 4x4 affine, nominal dtype."""

    def __init__(self, data, affine, dtype="float32"):
        self.data = np.asarray(data, dtype=np.float64)
        self.affine = np.asarray(affine, dtype=np.float64)
        self.dtype = dtype


def load_inputs(inputs):
    sample = {}
    for key, spec in inputs.items():
        if "raw" not in spec:
            sample[key] = spec["value"]
            continue
        data = np.fromfile(spec["raw"], dtype="<f8").reshape(spec["shape"])
        sample[key] = Item(data, spec.get("affine", np.eye(4).tolist()), spec.get("dtype", "float32"))
    return sample


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    registry = {}
    registry.update(spatial.TRANSFORMS)
    registry.update(intensity.TRANSFORMS)
    registry.update(deepgrow.TRANSFORMS)
    registry.update(deepedit.TRANSFORMS)
    fn = registry[req["transform"]]
    sample = load_inputs(req["inputs"])
    result = fn(sample, req.get("args", {}), req.get("params", {}))
    samples = result if isinstance(result, list) else [result]
    os.makedirs(req["output_dir"], exist_ok=True)
    described = []
    for n, s in enumerate(samples):
        d = {}
        for key, v in s.items():
            if isinstance(v, Item):
                np.ascontiguousarray(v.data, dtype="<f8").tofile(os.path.join(req["output_dir"], f"{n}_{key}.f64"))
                d[key] = {"shape": list(v.data.shape), "affine": v.affine.tolist(), "dtype": v.dtype}
            else:
                d[key] = {"value": v}
        described.append(d)
    print(json.dumps({"outputs": described}))


if __name__ == "__main__":
    main()
