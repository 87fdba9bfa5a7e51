"""Server overhead: a whole /v1/segmentation request (upload, read, pre-process, network,
post-process, write, reply) against `barton infer` on the same volume and model, side by side.
Prints one JSON line. Usage: overhead.py PORT MODEL IMAGE INFER_SECONDS [--repeats 3]"""
import argparse
import json
import statistics

from client import segmentation

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("model")
ap.add_argument("image")
ap.add_argument("infer_s", type=float, help="wall seconds of `barton infer` (whole process)")
ap.add_argument("--infer-inside-s", type=float, default=0.0,
                help="seconds `barton infer` spent on the case after loading (from its log)")
ap.add_argument("--repeats", type=int, default=3)
a = ap.parse_args()
image = open(a.image, "rb").read()
runs = []
for i in range(a.repeats + 1):
    status, headers, body, secs = segmentation(a.port, a.model, image)
    assert status == 200, (status, body[:300])
    runs.append({"s": round(secs, 3), "timing": headers.get("server-timing", "")})
cold, warm = runs[0], runs[1:]
warm_s = statistics.median(r["s"] for r in warm)
print(json.dumps({
    "bench": "serve_overhead", "image_mb": round(len(image) / 2**20, 1),
    "infer_process_s": a.infer_s, "request_cold_s": cold["s"], "request_warm_median_s": warm_s,
    "ratio_cold_vs_infer_process": round(cold["s"] / a.infer_s, 3),
    "ratio_warm_vs_infer_process": round(warm_s / a.infer_s, 3),
    "server_timing_warm": warm[-1]["timing"], "runs": runs}))
