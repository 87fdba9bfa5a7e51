#!/usr/bin/python3
"""Writes a TorchScript model the way a MONAI user does: MONAI's UNet module layout (the twin in
tests/golden/monai_twin/nn_twin.py), weights from a checkpoint, torch.jit.script, model.ts. Also
runs it on a fixed random input and writes input and output as raw float32, for Barton to compare.

usage: write_torchscript.py CKPT NETWORK_JSON OUT_DIR SHAPE(comma-separated)
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "monai_twin"))
import nn_twin as T  # noqa: E402


def main():
    ckpt, spec, out, shape = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], [int(v) for v in sys.argv[4].split(",")]
    state = torch.load(ckpt, map_location="cpu")
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    net = T.build_network(spec["name"], spec["args"])
    net.load_state_dict(state)
    net.eval()
    try:
        ts = torch.jit.script(net)
        how = "script"
    except Exception:  # the twin is written for eager PyTorch; tracing records the same graph
        ts = torch.jit.trace(net, torch.zeros(shape))
        how = "trace"
    os.makedirs(out, exist_ok=True)
    ts.save(os.path.join(out, "model.ts"))
    torch.manual_seed(0)
    x = torch.randn(shape)
    with torch.no_grad():
        y = torch.jit.load(os.path.join(out, "model.ts"))(x)
    x.numpy().tofile(os.path.join(out, "x.bin"))
    y.numpy().tofile(os.path.join(out, "y.bin"))
    print(json.dumps({"how": how, "out_shape": list(y.shape)}))


if __name__ == "__main__":
    main()
