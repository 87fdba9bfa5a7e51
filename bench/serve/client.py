"""Shared by the serve benchmarks: the AIAA Python client's wire format over http.client."""
import http.client
import json
import time

BOUNDARY = "----------lImIt_of_THE_fIle_eW_$"


def multipart(fields, files):
    out = b""
    for name, value in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for name, (filename, data) in files.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n\r\n".encode()


def request(port, method, target, body=None, timeout=600):
    """(status, headers dict, body bytes, seconds)."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if body is not None:
        headers["content-type"] = "multipart/form-data; boundary=" + BOUNDARY
    c.request(method, target, body, headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.perf_counter() - t0


def segmentation(port, model, image_bytes, session=None):
    target = f"/v1/segmentation?model={model}" + (f"&session_id={session}" if session else "")
    files = {} if session else {"datapoint": ("image.nii.gz", image_bytes)}
    return request(port, "POST", target, multipart({"params": "{}"}, files))


def create_session(port, image_bytes):
    s, _, body, secs = request(port, "PUT", "/session/?expiry=600",
                               multipart({}, {"image": ("image.nii.gz", image_bytes)}))
    return s, (json.loads(body)["session_id"] if s == 200 else None), secs


def proc_status(pid):
    """VmRSS and VmHWM in MiB, open fds, threads of a process."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "Threads"):
            out[k] = int(v.split()[0])
    import os
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mb": out["VmRSS"] / 1024, "hwm_mb": out["VmHWM"] / 1024,
            "threads": out["Threads"], "fds": out["fds"]}
