"""50 concurrent clients against a running `barton serve`, each mixing model listing, sessions
and segmentations for a fixed number of rounds. Prints one JSON line: failures, latency
percentiles, the server's peak RSS, and its fds and threads before and after.
Usage: load.py PORT SERVER_PID MODEL IMAGE [--clients 50] [--rounds 4] [--workers N]"""
import argparse
import json
import statistics
import threading
import time

from client import create_session, proc_status, request, segmentation

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("pid", type=int)
ap.add_argument("model")
ap.add_argument("image")
ap.add_argument("--clients", type=int, default=50)
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--workers", type=int, default=1, help="the server's --workers (for the warm-up)")
a = ap.parse_args()
image = open(a.image, "rb").read()
# Warm-up: one segmentation per worker at once, so that the model is loaded and every worker
# thread has made the threads it keeps (GNU OpenMP gives each calling thread its own team); the
# first snapshot comes after it.
warm = [threading.Thread(target=segmentation, args=(a.port, a.model, image))
        for _ in range(a.workers)]
for t in warm:
    t.start()
for t in warm:
    t.join()
time.sleep(0.5)
before = proc_status(a.pid)
lat = {"models": [], "session": [], "segmentation": [], "session_segmentation": []}
failures = []
peak = {"rss_mb": before["rss_mb"]}
lock = threading.Lock()
stop = threading.Event()


def sample():
    while not stop.is_set():
        s = proc_status(a.pid)
        with lock:
            peak["rss_mb"] = max(peak["rss_mb"], s["rss_mb"])
        time.sleep(0.05)


def client(n):
    for r in range(a.rounds):
        steps = []
        s, _, _, t = request(a.port, "GET", "/v1/models")
        steps.append(("models", s, t))
        if (n + r) % 2 == 0:
            s, sid, t = create_session(a.port, image)
            steps.append(("session", s, t))
            if sid:
                s, _, _, t = segmentation(a.port, a.model, None, sid)
                steps.append(("session_segmentation", s, t))
                request(a.port, "DELETE", f"/session/{sid}")
        else:
            s, _, _, t = segmentation(a.port, a.model, image)
            steps.append(("segmentation", s, t))
        with lock:
            for kind, status, secs in steps:
                if status != 200:
                    failures.append(f"client {n} round {r} {kind}: {status}")
                else:
                    lat[kind].append(secs)


sampler = threading.Thread(target=sample)
sampler.start()
t0 = time.perf_counter()
threads = [threading.Thread(target=client, args=(n,)) for n in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - t0
stop.set()
sampler.join()
time.sleep(1.0)  # connection threads go idle
after = proc_status(a.pid)


def pct(v, p):
    return round(sorted(v)[min(len(v) - 1, int(p * len(v)))], 3) if v else None


print(json.dumps({
    "bench": "serve_load", "clients": a.clients, "rounds": a.rounds,
    "requests": sum(len(v) for v in lat.values()) + len(failures), "failures": len(failures),
    "first_failures": failures[:5], "wall_s": round(wall, 2),
    "latency_s": {k: {"median": round(statistics.median(v), 3) if v else None,
                      "p95": pct(v, 0.95), "max": pct(v, 1.0)} for k, v in lat.items()},
    "rss_mb_before": round(before["rss_mb"], 1), "rss_mb_peak": round(peak["rss_mb"], 1),
    "rss_mb_after": round(after["rss_mb"], 1),
    "fds_before": before["fds"], "fds_after": after["fds"],
    "threads_before": before["threads"], "threads_after": after["threads"]}))
