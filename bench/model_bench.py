#!/usr/bin/python3
"""Model benchmark (Python side): MONAI's spleen UNet (the MONAI-layout twin in
tests/golden/monai_twin/nn_twin.py, torch's ConvTranspose3d as MONAI uses), DiceLoss (softmax,
to_onehot_y) + Adam training step, then sliding-window inference (roi 96^3, overlap 0.25, gaussian,
sw_batch_size 2) - the same work as bench/model_bench.cpp.

usage: model_bench.py [--mode step|sw|all] [--size 64] [--batch 2] [--steps 5] [--threads T] [--sw 192,192,96] [--sw-repeats 2]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "monai_twin"))
import nn_twin as T  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["step", "sw", "all"], default="all")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sw", default="192,192,96")
    p.add_argument("--sw-repeats", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = T.build_network("UNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [16, 32, 64, 128, 256],
                                   "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch"})
    loss = T.build_loss("DiceLoss", {"to_onehot_y": True, "softmax": True})
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(a.batch, 1, a.size, a.size, a.size)
    y = (torch.rand(a.batch, 1, a.size, a.size, a.size) > 0.7).float()
    net.train()
    times = []
    for s in range(a.steps + 2 if a.mode != "sw" else 0):
        t0 = time.perf_counter()
        opt.zero_grad()
        l = loss(net(x), y)
        l.backward()
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    del x, y
    net.eval()
    sw = [int(v) for v in a.sw.split(",")]
    vol = torch.randn(1, 1, *sw) if a.mode != "step" else None
    sw_times = []
    with torch.no_grad():
        for _ in range(a.sw_repeats if a.mode != "step" else 0):
            t0 = time.perf_counter()
            T.sliding_window_inference(vol, [96, 96, 96], 2, net, overlap=0.25, mode="gaussian")
            sw_times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "python", "mode": a.mode, "size": a.size, "batch": a.batch, "threads": a.threads,
                      "train_step_s": statistics.median(times) if times else 0, "train_step_min_s": min(times, default=0),
                      "train_step_max_s": max(times, default=0), "sw_s": statistics.median(sw_times) if sw_times else 0,
                      "sw_volume": sw, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
