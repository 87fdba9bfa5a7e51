#!/usr/bin/python3
"""MONAI's supervised training loop, rebuilt from the MONAI twins in tests/golden/monai_twin.

usage: /usr/bin/python3 train_twin.py MMAR --seed N --out RESULT.json [--init-state FILE] [--save-init FILE]

Reads MMAR/config/config_train.json and environment.json as a Clara 4.x MMAR defines them and trains
the way MONAI 1.4's SupervisedTrainer and SupervisedEvaluator do on a CPU:
- set_determinism(seed): torch, numpy and random seeded; the network is built after it;
- CacheDataset: the transforms up to the first random one run once per case; every visit starts
  from a deep copy of the cached case;
- DataLoader (num_workers 0): the transforms get one numpy RandomState each, seeded from a torch
  draw (MONAI's set_rnd); shuffle is torch's RandomSampler on a generator seeded from torch;
  list_data_collate flattens the num_samples patches of each case into the batch;
- iteration: zero_grad, loss(network(image), label).mean(), backward, step; `amp` does nothing for
  CPU tensors (MONAI autocasts for CUDA only), so everything is float32;
- LrScheduleHandler steps epoch by epoch;
- ValidationHandler every num_interval_per_valid epochs: eval(), no_grad, the validate section's
  inferer, post transforms per case (decollated), MeanDice / Accuracy reduced as MONAI's handlers.
The result is {"seed", "val": [{"epoch", "metrics": {...}}], "best": {"metric", "epoch"},
"train_loss": [per iteration]}.

Supported components are those of the parity configurations (bench/parity/README.md); anything else
raises with its name.
"""
import argparse
import collections
import copy
import json
import os
import random
import re
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TWIN = os.path.join(HERE, "..", "..", "tests", "golden", "monai_twin")
sys.path.insert(0, TWIN)

import intensity  # noqa: E402
import nn_twin  # noqa: E402
import spatial  # noqa: E402


from run import Item  # noqa: E402  the twins' image item: float64 data [C, *spatial], affine, dtype


# ------------------------------------------------------------------------------------------ config


def resolve_vars(node, env):
    """Clara's "{name}" substitution: a whole-string reference takes the value's type."""
    if isinstance(node, dict):
        return {k: resolve_vars(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_vars(v, env) for v in node]
    if isinstance(node, str):
        m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", node)
        if m and m.group(1) in env:
            return env[m.group(1)]
        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda mm: str(env.get(mm.group(1), mm.group(0))), node)
    return node


def apply_sets(conf, sets):
    """Barton's --set: KEY=VALUE (a top-level variable) or /json/pointer=VALUE; VALUE is JSON when it
    parses as JSON, else a string."""
    for item in sets:
        key, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = {"True": True, "False": False}.get(raw, raw)
        parts = [p for p in key.split("/") if p] if key.startswith("/") else [key]
        node = conf
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value


def load_config(mmar, sets=()):
    with open(os.path.join(mmar, "config", "config_train.json")) as f:
        conf = json.load(f)
    apply_sets(conf, sets)
    with open(os.path.join(mmar, "config", "environment.json")) as f:
        env = json.load(f)
    scalars = {k: v for k, v in conf.items() if not isinstance(v, (dict, list))}
    env = {**env, **scalars}
    return resolve_vars(conf, env), env


def expand_refs(section, train):
    """validate pre/post transforms given as {"ref": NAME} take the train entry of that name."""
    out = []
    for t in section:
        if "ref" in t:
            pool = train["pre_transforms"] + train.get("post_transforms", [])
            match = [p for p in pool if p["name"] == t["ref"]]
            if not match:
                raise KeyError(f"ref {t['ref']!r} names no train transform")
            out.append(match[0])
        else:
            out.append(t)
    return [t for t in out if not t.get("disabled", False)]


# ------------------------------------------------------------------------------------------ data

RANDOM = {"RandCropByPosNegLabeld", "RandShiftIntensityd", "RandScaleIntensityd", "RandFlipd",
          "RandRotate90d", "RandGaussianNoised"}
NO_OPS = {"ToTensord", "EnsureTyped"}


def load_image(path):
    import nibabel as nib
    img = nib.load(path)
    # LoadImaged's default dtype is float32: the values are rounded to it
    data = np.asanyarray(img.dataobj).astype(np.float32).astype(np.float64)
    return Item(data, img.affine, "float32")


def run_deterministic(t, sample):
    name, args = t["name"], t.get("args", {})
    if name == "LoadImaged":
        keys = [args["keys"]] if isinstance(args["keys"], str) else args["keys"]
        out = dict(sample)
        for k in keys:
            out[k] = load_image(sample[k])
        return out
    if name in NO_OPS:
        return sample
    if name == "EnsureChannelFirstd":
        # NIfTI images without a channel axis: MONAI's metadata says "no_channel"
        a = dict(args)
        a.setdefault("channel_dim", "no_channel")
        keys = [a["keys"]] if isinstance(a["keys"], str) else a["keys"]
        if all(sample[k].data.ndim == 4 for k in keys):
            a["channel_dim"] = None
        return spatial.TRANSFORMS[name](sample, a, {})
    for table in (spatial.TRANSFORMS, intensity.TRANSFORMS):
        if name in table:
            return table[name](sample, args, {})
    raise NotImplementedError(f"transform {name} is not in the twin loop")


class RandomStep:
    """One random transform with MONAI's draws, on its own RandomState (set_rnd)."""

    def __init__(self, t):
        self.name, self.args = t["name"], t.get("args", {})
        self.R = np.random.RandomState()

    def set_seed(self, seed):
        self.R = np.random.RandomState(seed)

    def __call__(self, sample, replay=None):
        """`replay`: the queue of Barton's draws for this case (BARTON_DRAW_LOG records, in order)."""
        if replay is not None:
            return self.replayed(sample, replay)
        a, R = self.args, self.R
        if self.name == "RandCropByPosNegLabeld":
            label = sample[a["label_key"]]
            img = sample[a["image_key"]].data if a.get("image_key") else None
            fg, bg = spatial.pos_neg_candidates(label.data, img, a.get("image_threshold", 0.0))
            pos, neg = float(a.get("pos", 1.0)), float(a.get("neg", 1.0))
            ratio = pos / (pos + neg)
            if len(fg) == 0:
                ratio = 0.0
            if len(bg) == 0:
                ratio = 1.0
            shape = label.data.shape[1:]
            centers = []
            for _ in range(int(a.get("num_samples", 1))):
                use = fg if R.rand() < ratio else bg
                idx = use[R.randint(len(use))]
                centers.append([int(v) for v in np.unravel_index(idx, shape)])
            return spatial.TRANSFORMS[self.name](sample, a, {"centers": centers, "check_candidates": False})
        prob = float(a.get("prob", 0.1))
        do = R.rand() < prob
        if self.name == "RandShiftIntensityd":
            if not do:
                return sample
            o = a["offsets"]
            lo, hi = (min(-o, o), max(-o, o)) if not isinstance(o, (list, tuple)) else (min(o), max(o))
            R.rand()  # the inner RandShiftIntensity's own prob draw (prob 1.0)
            off = R.uniform(low=lo, high=hi)
            return intensity.TRANSFORMS[self.name](sample, a, {"do_transform": True, "offset": off})
        raise NotImplementedError(f"random transform {self.name} is not in the twin loop")

    def replayed(self, sample, replay):
        if not replay:
            raise ValueError(f"the draw log has no draw of {self.name} left for this case")
        rec = replay.popleft()
        if rec["transform"] != self.name:
            raise ValueError(f"the draw log has {rec['transform']} where the chain has {self.name}")
        if self.name == "RandCropByPosNegLabeld":
            # check_candidates: every replayed centre must be a foreground or background voxel here too
            return spatial.TRANSFORMS[self.name](sample, self.args, {"centers": rec["centers"]})
        if self.name == "RandShiftIntensityd":
            if not rec["apply"]:
                return sample
            return intensity.TRANSFORMS[self.name](sample, self.args,
                                                   {"do_transform": True, "offset": rec["params"][0]})
        raise NotImplementedError(f"replaying {self.name} is not in the twin loop")


def read_draw_log(path):
    """Barton's BARTON_DRAW_LOG: the shuffled order of each epoch and each case's draws, in order."""
    orders, draws = {}, collections.defaultdict(collections.deque)
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "order" in rec:
                orders[rec["epoch"]] = rec["order"]
            else:
                draws[(rec["epoch"], rec["index"])].append(rec)
    return orders, draws


def collate(samples, keys=("image", "label")):
    out = {}
    for k in keys:
        out[k] = torch.from_numpy(np.stack([s[k].data for s in samples])).to(torch.float32)
    return out


# ------------------------------------------------------------------------------------------ loop


def build_loss(spec):
    return nn_twin.build_loss(spec["name"], spec.get("args", {}))


def build_optimizer(spec, params):
    args = {k: v for k, v in spec.get("args", {}).items() if k != "params"}
    return nn_twin.build_optimizer(spec["name"], params, args)


def post_process(sample, post):
    for t in post:
        name = t["name"]
        if name not in intensity.TRANSFORMS:
            raise NotImplementedError(f"post transform {name} is not in the twin loop")
        sample = intensity.TRANSFORMS[name](sample, t.get("args", {}), {})
    return sample


def metric_values(spec, preds, labels):
    """MeanDice / Accuracy over the validation cases, reduced as MONAI's ignite metrics."""
    name, args = spec["name"], spec.get("args", {})
    if name == "MeanDice":
        # the metric's buffer: one row per case (cases differ in size), reduced at the end
        buf = torch.cat([nn_twin.compute_dice(p[None], y[None], include_background=args.get("include_background", True))
                         for p, y in zip(preds, labels)])
        v, _ = nn_twin.do_metric_reduction(buf, args.get("reduction", "mean"))
        return float(v)
    if name == "Accuracy":
        # ignite's Accuracy on one-hot input: correct voxels over all voxels of all cases
        hits = sum(int((p.argmax(0) == y.argmax(0)).sum()) for p, y in zip(preds, labels))
        return hits / sum(p[0].numel() for p in preds)
    raise NotImplementedError(f"metric {name} is not in the twin loop")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mmar")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init-state", help="load these initial weights (torch state_dict) instead of the seeded init")
    ap.add_argument("--save-init", help="write the seeded initial weights here")
    ap.add_argument("--init-only", action="store_true", help="stop after --save-init")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="overrides, as Barton's --set")
    ap.add_argument("--replay", help="Barton's draw log (BARTON_DRAW_LOG): train on the patches Barton drew")
    ns = ap.parse_args()
    if ns.threads > 0:
        torch.set_num_threads(ns.threads)

    conf, env = load_config(ns.mmar, ns.set)
    train, val = conf["train"], conf["validate"]

    # set_determinism(seed)
    torch.manual_seed(ns.seed)
    np.random.seed(ns.seed)
    random.seed(ns.seed)

    # the network first: the deterministic transforms draw nothing from torch
    model_spec = train["model"]
    net = nn_twin.build_network(model_spec["name"], model_spec.get("args", {}))
    if ns.save_init:
        torch.save(net.state_dict(), ns.save_init)
    if ns.init_only:
        return
    if ns.init_state:
        state = torch.load(ns.init_state)
        net.load_state_dict(state["model"] if "model" in state and isinstance(state["model"], dict) else state)
    with open(os.path.join(ns.mmar, env["DATASET_JSON"])) as f:
        datalist = json.load(f)
    base = os.path.join(ns.mmar, env["DATA_ROOT"])

    def items(key):
        return [{k: os.path.join(base, v) if k in ("image", "label") else v for k, v in d.items()}
                for d in datalist[key]]

    tr_pre = [t for t in train["pre_transforms"] if not t.get("disabled", False)]
    first_random = next((i for i, t in enumerate(tr_pre) if t["name"] in RANDOM), len(tr_pre))
    det, rnd = tr_pre[:first_random], [RandomStep(t) for t in tr_pre[first_random:] if t["name"] not in NO_OPS]
    for t in tr_pre[first_random:]:
        if t["name"] not in RANDOM and t["name"] not in NO_OPS:
            raise NotImplementedError(f"deterministic transform {t['name']} after a random one")

    def cache(key, chain):
        out = []
        for d in items(key):
            s = dict(d)
            for t in chain:
                s = run_deterministic(t, s)
            out.append(s)
        return out

    t0 = time.time()
    train_cache = cache("training", det)
    val_cache = cache("validation", expand_refs(val["pre_transforms"], train))
    cache_s = time.time() - t0

    loss_fn = build_loss(train["loss"])
    opt = build_optimizer(train["optimizer"], net.parameters())
    sched = None
    if "lr_scheduler" in train:
        sargs = {k: v for k, v in train["lr_scheduler"].get("args", {}).items() if k != "optimizer"}
        sched = nn_twin.build_scheduler(train["lr_scheduler"]["name"], opt, sargs, opt.param_groups[0]["lr"])

    loader = train["dataloader"]["args"]
    batch_size, shuffle = int(loader.get("batch_size", 1)), bool(loader.get("shuffle", False))
    # MONAI DataLoader, num_workers 0: set_rnd(dataset, int32 draw from torch) once, at construction
    # (int32 draw, then set_random_state takes it modulo MAX_SEED); Compose.set_random_state hands
    # each randomizable transform a uint32 draw from a RandomState seeded with it.
    seed32 = int(torch.empty((), dtype=torch.int32).random_().item()) % (2 ** 32)
    compose_r = np.random.RandomState(seed32)
    for step in rnd:
        step.set_seed(int(compose_r.randint(2 ** 32, dtype="uint32")))
    sampler_gen = torch.Generator()
    sampler_gen.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))

    inferer = val["inferer"]
    iargs = inferer.get("args", {})
    val_post = expand_refs(val.get("post_transforms", []), train)
    key_metric = val["key_metric"]
    metrics = [key_metric] + list(val.get("additional_metrics", []))
    epochs = int(train["trainer"]["args"].get("max_epochs", conf.get("epochs", 1)))
    interval = 1
    for h in train.get("handlers", []):
        if h["name"] == "ValidationHandler" and not h.get("disabled", False):
            interval = int(h["args"].get("interval", 1))

    replay = read_draw_log(ns.replay) if ns.replay else None
    result = {"seed": ns.seed, "val": [], "train_loss": [], "best": {"metric": -1.0, "epoch": -1},
              "cache_s": cache_s}
    t_train = time.time()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(train_cache), generator=sampler_gen).tolist() if shuffle else \
            list(range(len(train_cache)))
        if replay is not None and shuffle:
            order = replay[0][epoch]
        for b in range(0, len(order), batch_size):
            patches = []
            for idx in order[b:b + batch_size]:
                samples = [copy.deepcopy(train_cache[idx])]
                queue = replay[1][(epoch, idx)] if replay is not None else None
                for step in rnd:
                    nxt = []
                    for s in samples:
                        r = step(s, queue)
                        nxt.extend(r if isinstance(r, list) else [r])
                    samples = nxt
                patches.extend(samples)
            batch = collate(patches)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(batch["image"]), batch["label"]).mean()
            loss.backward()
            opt.step()
            result["train_loss"].append(float(loss))
        if sched is not None:
            sched.step()
        if epoch % interval != 0:
            continue
        net.eval()
        preds, labels = [], []
        with torch.no_grad():
            for s in val_cache:
                x = torch.from_numpy(s["image"].data[None]).to(torch.float32)
                if inferer["name"] == "SlidingWindowInferer":
                    y = nn_twin.sliding_window_inference(
                        x, iargs["roi_size"], int(iargs.get("sw_batch_size", 1)), net,
                        overlap=float(iargs.get("overlap", 0.25)), mode=iargs.get("mode", "constant"),
                        sigma_scale=float(iargs.get("sigma_scale", 0.125)))
                elif inferer["name"] == "SimpleInferer":
                    y = net(x)
                else:
                    raise NotImplementedError(f"inferer {inferer['name']} is not in the twin loop")
                case = dict(s)
                case["pred"] = Item(y[0].to(torch.float64).numpy(), s["image"].affine, "float32")
                case = post_process(case, val_post)
                preds.append(torch.from_numpy(case["pred"].data))
                labels.append(torch.from_numpy(case["label"].data))
        vals = {m.get("log_label", m["name"]): metric_values(m, preds, labels) for m in metrics}
        key = vals[key_metric.get("log_label", key_metric["name"])]
        if key > result["best"]["metric"]:
            result["best"] = {"metric": key, "epoch": epoch}
        result["val"].append({"epoch": epoch, "metrics": vals})
        print(f"epoch {epoch}: " + "  ".join(f"{k} {v:.4f}" for k, v in vals.items()), flush=True)
    result["train_s"] = time.time() - t_train
    with open(ns.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
