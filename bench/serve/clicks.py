"""Per-click latency of an interactive (DeepGrow) model through the server: a session holds the
prepared volume, then each click is a /v1/deepgrow request with the session. Reports the wall time
of each click request and the server's own stage split (params.latencies). Prints one JSON line.
Usage: clicks.py PORT MODEL IMAGE I J K [--clicks 10] [--infer-s S]"""
import argparse
import json
import statistics

from client import create_session, multipart, request

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("model")
ap.add_argument("image")
ap.add_argument("i", type=int)
ap.add_argument("j", type=int)
ap.add_argument("k", type=int)
ap.add_argument("--clicks", type=int, default=10)
ap.add_argument("--infer-s", type=float, default=0.0,
                help="wall seconds of the same click through `barton infer` (whole process)")
a = ap.parse_args()
image = open(a.image, "rb").read()
status, session, session_s = create_session(a.port, image)
assert status == 200, status


def params_of(headers, body):
    boundary = headers["content-type"].split("boundary=", 1)[1].strip('"').encode()
    for part in body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if b'name="params"' in head:
            return json.loads(data.rsplit(b"\r\n", 1)[0])
    raise RuntimeError("no params part")


runs = []
for n in range(a.clicks + 1):
    # Foreground clicks walk around the first one, one voxel a click: each is a new request.
    fg = [[a.i + (n % 3) - 1, a.j + ((n // 3) % 3) - 1, a.k]]
    body = multipart({"params": json.dumps({"foreground": fg, "background": []})}, {})
    s, h, data, secs = request(a.port, "POST",
                               f"/v1/deepgrow?model={a.model}&session_id={session}", body)
    assert s == 200, (s, data[:300])
    p = params_of(h, data)
    runs.append({"s": round(secs, 4), "latencies": {k: round(v, 4) for k, v in p["latencies"].items()},
                 "cached": p["session_cached"], "crop": p["crop"]})
first, rest = runs[0], runs[1:]
med = statistics.median(r["s"] for r in rest)
stages = {k: round(statistics.median(r["latencies"][k] for r in rest), 4) for k in rest[0]["latencies"]}
crop = rest[0]["crop"]
out = {"bench": "deepgrow_click", "model": a.model, "session_upload_s": round(session_s, 3),
       "first_click_s": first["s"], "click_median_s": med, "click_max_s": max(r["s"] for r in rest),
       "stage_median_s": stages, "crop_voxels_input_grid": [c[1] - c[0] + 1 for c in crop],
       "clicks": len(rest)}
if a.infer_s > 0:
    out["infer_process_s"] = a.infer_s
    out["ratio_click_vs_infer_process"] = round(med / a.infer_s, 4)
print(json.dumps(out))
