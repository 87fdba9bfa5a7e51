#!/usr/bin/python3
"""Runs one MONAI-equivalent network / loss / metric / optimizer / scheduler / sliding-window call with
the PyTorch twin (nn_twin.py) for Barton's tests.

usage: /usr/bin/python3 run_nn.py REQUEST.json        -> prints one JSON object on stdout

Tensors are raw little-endian float64 files in C order. An input spec is {"raw": path, "shape": [...]};
outputs are written to REQUEST["output_dir"] and described the same way. Request kinds:

  {"kind": "loss", "name": "DiceLoss", "args": {...MONAI args...}, "input": spec, "target": spec,
   "mask": spec (MaskedDiceLoss, optional), "output_dir": d}
      -> {"value": spec, "grad_input": spec}     grad_input = d(sum(loss))/d(input), float64
     DeepSupervisionLoss: args {"loss": {"name": ..., "args": {...}}, "weight_mode": "exp", "weights": null};
     "input" is a list of specs (one per level) or one spec plus "unbind_dim": 1 (DynUNet's stacked
     output); "grad_input" is then a list of specs (or one spec for the stacked form).
     Also "CrossEntropyLoss" / "BCEWithLogitsLoss" (plain torch).
  {"kind": "metric", "name": "DiceMetric" | "HausdorffDistanceMetric" | "SurfaceDistanceMetric" |
   "SurfaceDiceMetric" | "ConfusionMatrixMetric", "args": {...}, "y_pred": spec, "y": spec,
   "spacing": [..] | [[..] per batch] | number | null, "output_dir": d}
      -> {"raw_values": spec (buffer [B, C'] or [B, C', 4] for the confusion matrix; NaN/inf kept),
          "aggregate": spec, "not_nans": spec}
     ConfusionMatrixMetric: "aggregate" stacks one result per metric_name on a new dim 0.
  {"kind": "network", "name": "UNet" | "BasicUNet" | "SegResNet" | "DynUNet" | "AttentionUnet",
   "args": {...}, "seed": 0, "input": spec, "output_dir": d, "train": false, "dtype": "float32"}
      -> builds with torch.manual_seed(seed), saves state_dict() (float32, BN counters int64) with
         torch.save to d/model.pt *before* the forward pass, runs forward (eval unless train; "dtype"
         "float64" runs a double copy), -> {"output": spec, "state_dict": [[key, shape, dtype], ...],
         "num_parameters": n, "state_dict_path": d/model.pt}
  {"kind": "network_from_state", ... same as network ..., "state_dict_path": path}
      path = a torch.save file (or a TorchScript archive: its named parameters and buffers are used),
      or a directory with manifest.json {"tensors": [{"key", "shape", "raw", "dtype"}]} (raw float64
      files, relative to the directory). strict load; -> same answer as "network".
  {"kind": "optimizer", "name": "Novograd" | "Adam" | "AdamW" | "SGD" | any torch.optim name,
   "args": {...}, "params": [spec...], "grads": [[spec per param] per step], "output_dir": d}
      -> {"params": [spec...]}   (float64 parameters)
  {"kind": "scheduler", "name": "StepLR" | "MultiStepLR" | "ExponentialLR" | "CosineAnnealingLR" |
   "WarmupCosineSchedule" | "PolynomialLR" | "LinearLR" | "ReduceLROnPlateau" | "PolyLR", "args": {...},
   "base_lr": x, "steps": n, "metrics": [...] (plateau)}
      -> {"lrs": [initial lr, lr after step 1, ..., after step n]}
     LinearLR/ExponentialLR are MONAI's (end_lr, num_iter) when those args are given, else torch's;
     PolyLR = nnU-Net PolyLRScheduler(initial_lr=base_lr, max_steps, exponent=0.9).
  {"kind": "sliding_window", "roi_size": [...], "sw_batch_size": n, "overlap": x, "mode": "gaussian",
   "sigma_scale": s, "padding_mode": "constant", "cval": 0, "input": spec, "predictor": P,
   "output_dir": d}
      P = "identity" | "double" | "conv_seed0" | {"network": name, "args": {...}, "seed": s or
      "state_dict_path": p}.  conv_seed0: torch.manual_seed(0); ConvNd(C_in, 2, kernel 3, padding 1,
      bias) built in float32, cast to float64, output sigmoid(conv(x)); its weight/bias are written
      as d/conv_seed0_weight.f64 and d/conv_seed0_bias.f64 and described in "predictor_weights".
      -> {"output": spec}
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nn_twin as T  # noqa: E402

DT = {"float32": torch.float32, "float64": torch.float64}


def load(spec, dtype=torch.float64):
    a = np.fromfile(spec["raw"], dtype="<f8").reshape(spec["shape"])
    return torch.from_numpy(a.copy()).to(dtype)


def save(out_dir, name, t):
    a = t.detach().cpu().to(torch.float64).numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)
    path = os.path.join(out_dir, name + ".f64")
    np.ascontiguousarray(a, dtype="<f8").tofile(path)
    return {"raw": path, "shape": list(a.shape)}


def do_loss(req, out):
    name = req["name"]
    loss = T.build_loss(name, req.get("args", {}))
    tgt = load(req["target"])
    inp = req["input"]
    stacked = False
    if isinstance(inp, list):
        xs = [load(s).requires_grad_(True) for s in inp]
        x_in = xs
    elif name == "DeepSupervisionLoss" and req.get("unbind_dim") is not None:
        stacked = True
        xs = [load(inp).requires_grad_(True)]
        x_in = list(torch.unbind(xs[0], dim=int(req["unbind_dim"])))
    else:
        xs = [load(inp).requires_grad_(True)]
        x_in = xs[0]
    if req.get("mask") is not None:
        val = loss(x_in, tgt, mask=load(req["mask"]))
    else:
        val = loss(x_in, tgt)
    val.sum().backward()
    res = {"value": save(out, "value", val)}
    if isinstance(inp, list):
        res["grad_input"] = [save(out, f"grad_input_{i}", x.grad) for i, x in enumerate(xs)]
    else:
        res["grad_input"] = save(out, "grad_input", xs[0].grad)
    if stacked:
        res["stacked"] = True
    return res


def do_metric(req, out):
    buf, agg, nn_ = T.run_metric(req["name"], req.get("args", {}), load(req["y_pred"]), load(req["y"]),
                                 spacing=req.get("spacing"))
    return {"raw_values": save(out, "raw_values", buf), "aggregate": save(out, "aggregate", agg),
            "not_nans": save(out, "not_nans", nn_)}


def load_state(path):
    if os.path.isdir(path):
        with open(os.path.join(path, "manifest.json")) as f:
            man = json.load(f)
        sd = {}
        for t in man["tensors"]:
            raw = t["raw"] if os.path.isabs(t["raw"]) else os.path.join(path, t["raw"])
            a = np.fromfile(raw, dtype="<f8").reshape(t["shape"])
            sd[t["key"]] = torch.from_numpy(a.copy()).to(getattr(torch, t.get("dtype", "float32")))
        return sd
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception:  # noqa: BLE001 - a TorchScript archive (torch::save of a module)
        m = torch.jit.load(path, map_location="cpu")
        obj = dict(m.named_parameters())
        obj.update(dict(m.named_buffers()))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    return obj


def describe_net(net, out):
    sd = net.state_dict()
    path = os.path.join(out, "model.pt")
    torch.save(sd, path)
    return {"state_dict": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()],
            "num_parameters": int(sum(p.numel() for p in net.parameters())), "state_dict_path": path}


def forward(net, req, out):
    dtype = DT[req.get("dtype", "float32")]
    if dtype != torch.float32:
        net = net.to(dtype)
    net.train(bool(req.get("train", False)))
    with torch.no_grad():
        y = net(load(req["input"], dtype))
    return save(out, "output", y)


def do_network(req, out):
    net = T.build_network(req["name"], req.get("args", {}), seed=req.get("seed", 0))
    res = describe_net(net, out)
    res["output"] = forward(net, req, out)
    return res


def do_network_from_state(req, out):
    net = T.build_network(req["name"], req.get("args", {}), seed=req.get("seed", 0))
    sd = load_state(req["state_dict_path"])
    net.load_state_dict(sd, strict=True)
    res = describe_net(net, out)
    res["output"] = forward(net, req, out)
    return res


def do_optimizer(req, out):
    params = [torch.nn.Parameter(load(s)) for s in req["params"]]
    opt = T.build_optimizer(req["name"], params, req.get("args", {}))
    for step in req["grads"]:
        opt.zero_grad()
        for p, g in zip(params, step):
            p.grad = load(g)
        opt.step()
    return {"params": [save(out, f"param_{i}", p) for i, p in enumerate(params)]}


def do_scheduler(req, out):
    return {"lrs": T.scheduler_lrs(req["name"], req.get("args", {}), float(req["base_lr"]), int(req["steps"]),
                                   req.get("metrics"))}


def make_predictor(p, cin, nd, out):
    if p == "identity":
        return (lambda x: x), None
    if p == "double":
        return (lambda x: 2.0 * x), None
    if p == "conv_seed0":
        torch.manual_seed(0)
        conv = T.conv_type(nd)(cin, 2, 3, padding=1, bias=True).double()
        info = {"weight": save(out, "conv_seed0_weight", conv.weight), "bias": save(out, "conv_seed0_bias", conv.bias)}
        return (lambda x: torch.sigmoid(conv(x))), info
    if isinstance(p, dict) and "network" in p:
        net = T.build_network(p["network"], p.get("args", {}), seed=p.get("seed", 0))
        if p.get("state_dict_path"):
            net.load_state_dict(load_state(p["state_dict_path"]), strict=True)
        net = net.double().eval()
        return net, None
    raise ValueError(f"unknown predictor {p!r}")


def do_sliding_window(req, out):
    x = load(req["input"])
    pred, info = make_predictor(req.get("predictor", "identity"), x.shape[1], x.ndim - 2, out)
    with torch.no_grad():
        y = T.sliding_window_inference(x, req["roi_size"], int(req.get("sw_batch_size", 1)), pred,
                                       overlap=req.get("overlap", 0.25), mode=req.get("mode", "constant"),
                                       sigma_scale=req.get("sigma_scale", 0.125),
                                       padding_mode=req.get("padding_mode", "constant"), cval=req.get("cval", 0.0))
    res = {"output": save(out, "output", y)}
    if info:
        res["predictor_weights"] = info
    return res


KINDS = {"loss": do_loss, "metric": do_metric, "network": do_network, "network_from_state": do_network_from_state,
         "optimizer": do_optimizer, "scheduler": do_scheduler, "sliding_window": do_sliding_window}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    out = req.get("output_dir") or os.path.dirname(os.path.abspath(sys.argv[1]))
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("TWIN_THREADS", "1")))
    print(json.dumps(KINDS[req["kind"]](req, out)))


if __name__ == "__main__":
    main()
