#!/usr/bin/python3
"""Side-by-side training: Barton and the MONAI twin loop (train_twin.py) on one MMAR, seed by seed.

usage: /usr/bin/python3 bench/parity/parity.py --barton build/barton --config unet_bn
           [--seeds 0,1,2,3,4,5] [--work /tmp/parity] [--own-init] [--bf16] [--set K=V ...] [--report FILE.md]

For every seed both sides train the configuration bench/parity/CONFIG/config on the same data (six
synthetic CT-like cases from `barton data synth`, 80x80x32 voxels of 1.5x1.5x4 mm: four to train, two to
validate) and validate after
every epoch. By default both start from the same weights (the twin's seeded initialisation, which is
PyTorch's, handed to Barton through the config's CheckpointLoader) so that a difference in the curves
comes from training, not from the draw of the initial weights; --own-init lets Barton initialise its
network itself. The random draws (patch centres, intensity shifts, shuffling) are each side's own.

Prints both validation curves per seed, then the best validation value of the key metric per seed
with the mean and standard deviation of each side, and writes the same as JSON (WORK/CONFIG/result.json)
and, with --report, as a markdown section.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
VAL_LINE = re.compile(r"Validation at epoch (\d+) .*?: (.*?)\s+\(best")


def sh(cmd, log, env=None):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}); log {log}:\n{tail}")


def make_mmar(dst, config, data):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(os.path.join(dst, "models"))
    shutil.copytree(os.path.join(HERE, config, "config"), os.path.join(dst, "config"))
    os.symlink(os.path.abspath(data), os.path.join(dst, "data"))
    return dst


def barton_curve(log):
    """Per-epoch validation metrics from Barton's log lines."""
    curve = []
    with open(log) as f:
        for line in f:
            m = VAL_LINE.search(line)
            if not m:
                continue
            vals = dict(re.findall(r"(\w+) (-?[0-9.]+(?:e-?\d+)?|nan)", m.group(2)))
            curve.append({"epoch": int(m.group(1)), "metrics": {k: float(v) for k, v in vals.items()}})
    return curve


ITER_LINE = re.compile(r"Epoch (\d+)/\d+ \[[#.]*\] (\d+)/\d+\s+\w+ (-?[0-9.]+|nan)")


def barton_losses(log):
    """The training loss of every iteration (BARTON_LOG_EVERY=1), as printed (4 decimals)."""
    with open(log) as f:
        return [float(m.group(3)) for m in map(ITER_LINE.search, f) if m]


def best(curve, key):
    b = (-1.0, -1)
    for c in curve:
        if c["metrics"][key] > b[0]:
            b = (c["metrics"][key], c["epoch"])
    return {"metric": b[0], "epoch": b[1]}


def run_seed(a, seed, data, key):
    root = os.path.join(a.work, run_name(a), f"seed_{seed}")
    os.makedirs(root, exist_ok=True)
    twin_mmar = make_mmar(os.path.join(root, "twin"), a.config, data)
    bart_mmar = make_mmar(os.path.join(root, "barton"), a.config, data)
    init = os.path.join(root, "init.pt")
    threads = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "BARTON_THREADS": str(a.threads),
               "BARTON_LOG_EVERY": "1"}
    twin_cmd = [PY, os.path.join(HERE, "train_twin.py"), twin_mmar, "--seed", str(seed), "--out",
                os.path.join(root, "twin.json"), "--threads", str(a.threads), "--set"] + a.set
    bart_cmd = [a.barton, "train", bart_mmar] + (["--bf16"] if a.bf16 else []) + ["--set", f"/determinism/random_seed={seed}"] + a.set
    if a.init:
        shutil.copyfile(a.init, init)
    elif not a.own_init:
        # the twin's seeded initialisation (PyTorch's), loaded by both sides
        sh([PY, os.path.join(HERE, "train_twin.py"), twin_mmar, "--seed", str(seed), "--out", "/dev/null",
            "--save-init", init, "--init-only", "--set"] + a.set, os.path.join(root, "init.log"))
    if a.init or not a.own_init:
        bart_cmd += ["dont_load_ckpt_model=false", f"MMAR_CKPT={init}"]
        twin_cmd += ["--init-state", init]
    t0 = time.time()
    with open(os.path.join(root, "twin.log"), "w") as tf, open(os.path.join(root, "barton.log"), "w") as bf:
        if a.barton_only:
            rc_b = subprocess.run(bart_cmd, stdout=bf, stderr=subprocess.STDOUT, env=threads).returncode
            rc_t = 0
        elif a.replay:
            # Barton first, logging its draws; the twin then trains on the same patches
            draws = os.path.join(root, "draws.jsonl")
            if os.path.exists(draws):
                os.remove(draws)
            rc_b = subprocess.run(bart_cmd, stdout=bf, stderr=subprocess.STDOUT,
                                  env={**threads, "BARTON_DRAW_LOG": draws}).returncode
            rc_t = subprocess.run(twin_cmd + ["--replay", draws] + a.twin_args, stdout=tf, stderr=subprocess.STDOUT,
                                  env=threads).returncode if rc_b == 0 else 0
        else:
            # the two sides run at once, a.threads threads each
            tp = subprocess.Popen(twin_cmd + a.twin_args, stdout=tf, stderr=subprocess.STDOUT, env=threads)
            bp = subprocess.Popen(bart_cmd, stdout=bf, stderr=subprocess.STDOUT, env=threads)
            rc_b, rc_t = bp.wait(), tp.wait()
    for rc, side in ((rc_b, "barton"), (rc_t, "twin")):
        if rc != 0:
            with open(os.path.join(root, f"{side}.log")) as f:
                raise RuntimeError(f"{side} failed for seed {seed} ({rc}):\n{f.read()[-3000:]}")
    bcurve = barton_curve(os.path.join(root, "barton.log"))
    if a.barton_only:
        return {"seed": seed, "barton": {"val": bcurve, "best": best(bcurve, key),
                                         "loss": barton_losses(os.path.join(root, "barton.log"))},
                "wall_s": time.time() - t0}
    with open(os.path.join(root, "twin.json")) as f:
        twin = json.load(f)
    if len(bcurve) != len(twin["val"]):
        raise RuntimeError(f"seed {seed}: Barton validated {len(bcurve)} times, the twin {len(twin['val'])}")
    return {"seed": seed,
            "barton": {"val": bcurve, "best": best(bcurve, key), "loss": barton_losses(os.path.join(root, "barton.log"))},
            "twin": {"val": twin["val"], "best": best(twin["val"], key), "loss": twin["train_loss"]},
            "wall_s": time.time() - t0}


def run_name(a):
    return (a.config + ("-bf16" if a.bf16 else "") + ("-replay" if a.replay else "")
            + ("-barton" if a.barton_only else ""))


def summary(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def report(a, runs, key):
    variant = ", ".join(v for v in ("Barton --bf16" if a.bf16 else "", "same patches" if a.replay else "", "own initialisation" if a.own_init else
                                    "same initial weights", " ".join(a.set)) if v)
    lines = [f"### {a.config} ({variant}): best {key} per seed", "",
             "| seed | twin loop (MONAI) | Barton | difference |", "|---|---|---|---|"]
    for r in runs:
        t, b = r["twin"]["best"], r["barton"]["best"]
        lines.append(f"| {r['seed']} | {t['metric']:.4f} (epoch {t['epoch']}) | {b['metric']:.4f} (epoch {b['epoch']}) "
                     f"| {b['metric'] - t['metric']:+.4f} |")
    tm, ts = summary([r["twin"]["best"]["metric"] for r in runs])
    bm, bs = summary([r["barton"]["best"]["metric"] for r in runs])
    lines.append(f"| mean (sd) | {tm:.4f} ({ts:.4f}) | {bm:.4f} ({bs:.4f}) | {bm - tm:+.4f} |")
    lines += ["", f"Validation {key} after each epoch (twin / Barton):", "", "```"]
    for r in runs:
        t = " ".join(f"{c['metrics'][key]:.3f}" for c in r["twin"]["val"])
        b = " ".join(f"{c['metrics'][key]:.3f}" for c in r["barton"]["val"])
        lines += [f"seed {r['seed']} twin   {t}", f"seed {r['seed']} barton {b}"]
    lines.append("```")
    if a.replay:
        lines += ["", "Training loss of the first 8 iterations (twin / Barton; the same patches):", "", "```"]
        for r in runs:
            lines += [f"seed {r['seed']} twin   " + " ".join(f"{v:.4f}" for v in r["twin"]["loss"][:8]),
                      f"seed {r['seed']} barton " + " ".join(f"{v:.4f}" for v in r["barton"]["loss"][:8])]
        lines.append("```")
    return "\n".join(lines) + "\n", bm - tm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--barton", default="build/barton")
    ap.add_argument("--config", default="unet_bn")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--work", default="/tmp/barton-parity")
    ap.add_argument("--own-init", action="store_true", help="Barton initialises its network itself")
    ap.add_argument("--init", help="both sides start from this checkpoint (a state_dict, or a dict with 'model')")
    ap.add_argument("--threads", type=int, default=1, help="threads per side (default 1; both sides run at once)")
    ap.add_argument("--replay", action="store_true",
                    help="the twin trains on the patches Barton drew (BARTON_DRAW_LOG), after it: the two runs "
                         "then differ only in how they compute")
    ap.add_argument("--set", nargs="*", default=[], help="overrides for both sides (Barton's --set syntax)")
    ap.add_argument("--barton-only", action="store_true", help="run Barton alone (e.g. --bf16 against a run without)")
    ap.add_argument("--bf16", action="store_true", help="Barton trains with --bf16 (bfloat16 autocast on CPU)")
    ap.add_argument("--twin-args", nargs="*", default=[])
    ap.add_argument("--cases", type=int, default=6, help="synthetic cases (default 6)")
    ap.add_argument("--val", type=int, default=2, help="of which the last N validate (default 2)")
    ap.add_argument("--synth-arg", action="append", default=None,
                    help="a `barton data synth` option (default --size=80,80,32 --spacing=1.5,1.5,4: CT-like "
                         "volumes small enough for 20 validations a run on a 2-core CPU)")
    ap.add_argument("--report")
    ap.add_argument("--key", default="val_mean_dice")
    ap.add_argument("--expect-same-losses", type=float, nargs=2, metavar=("N", "TOL"),
                    help="exit 1 unless the first N training losses agree within TOL (with --replay)")
    ap.add_argument("--expect-same-curves", type=float, metavar="TOL",
                    help="exit 1 unless every validation value agrees within TOL (a check for runs whose "
                         "weights cannot move, e.g. learning_rate=0 without batch norm)")
    a = ap.parse_args()
    a.barton = os.path.abspath(a.barton)
    a.init = os.path.abspath(a.init) if a.init else None
    if a.synth_arg is None:
        a.synth_arg = ["--size=80,80,32", "--spacing=1.5,1.5,4"]
    data = os.path.join(a.work, "data")
    if not os.path.exists(os.path.join(data, "dataset.json")):
        os.makedirs(a.work, exist_ok=True)
        sh([a.barton, "data", "synth", data, "--cases", str(a.cases), "--seed", "0"] + a.synth_arg,
           os.path.join(a.work, "synth.log"))
        # the last --val cases validate, the others train
        with open(os.path.join(data, "dataset.json")) as f:
            ds = json.load(f)
        cases = ds["training"] + ds["validation"]
        ds["training"], ds["validation"] = cases[:-a.val], cases[-a.val:]
        ds["test"] = [{"image": c["image"]} for c in ds["validation"]]
        with open(os.path.join(data, "dataset.json"), "w") as f:
            json.dump(ds, f, indent=1)
    runs = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        r = run_seed(a, seed, data, a.key)
        runs.append(r)
        if a.barton_only:
            print(f"seed {seed}: Barton {r['barton']['best']['metric']:.4f} (epoch {r['barton']['best']['epoch']}) "
                  f"[{r['wall_s']:.0f} s]", flush=True)
            continue
        print(f"seed {seed}: twin {r['twin']['best']['metric']:.4f} (epoch {r['twin']['best']['epoch']}), "
              f"Barton {r['barton']['best']['metric']:.4f} (epoch {r['barton']['best']['epoch']}) "
              f"[{r['wall_s']:.0f} s]", flush=True)
    if a.barton_only:
        with open(os.path.join(a.work, run_name(a), "result.json"), "w") as f:
            json.dump(runs, f, indent=1)
        m, sd = summary([r["barton"]["best"]["metric"] for r in runs])
        print(f"Barton alone ({run_name(a)}): mean best {a.key} {m:.4f} (sd {sd:.4f})")
        return 0
    text, diff = report(a, runs, a.key)
    print(text)
    with open(os.path.join(a.work, run_name(a), "result.json"), "w") as f:
        json.dump(runs, f, indent=1)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text)
    if a.expect_same_losses is not None:
        n, tol = int(a.expect_same_losses[0]), a.expect_same_losses[1]
        worst = max(abs(t - b) for r in runs for t, b in zip(r["twin"]["loss"][:n], r["barton"]["loss"][:n]))
        short = [r["seed"] for r in runs if min(len(r["twin"]["loss"]), len(r["barton"]["loss"])) < n]
        print(f"largest difference of the first {n} training losses: {worst:.6f} (tolerance {tol})")
        if short or worst > tol:
            return 1
    if a.expect_same_curves is not None:
        worst = max(abs(t["metrics"][a.key] - b["metrics"][a.key])
                    for r in runs for t, b in zip(r["twin"]["val"], r["barton"]["val"]))
        print(f"largest difference between the curves: {worst:.6f} (tolerance {a.expect_same_curves})")
        return 0 if worst <= a.expect_same_curves else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
