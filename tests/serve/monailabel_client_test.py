#!/usr/bin/python3
"""`barton serve` driven the way MONAI Label's client and its Slicer plugin drive a server:
Python's http.client with the client's fixed boundary, one connection per call, trailing-slash
routes, `files` parts for sessions, JSON bodies for active learning and training. The server is
the real command line on a small spleen MMAR trained here for one epoch.
Usage: monailabel_client_test.py BARTON_BINARY REPOSITORY_ROOT"""
import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

BOUNDARY = "----------lImIt_of_THE_fIle_eW_$"
BARTON, ROOT = sys.argv[1], sys.argv[2]
FAILURES = []


def check(cond, what):
    print(("ok      " if cond else "FAILED  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def multipart(fields, files):
    body = b""
    for name, value in fields.items():
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    for name, (filename, data) in files.items():
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                 f"filename=\"{filename}\"\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n\r\n".encode()


class Client:
    """The transport of MONAI Label's client.py, re-written here: http.client, HTTP/1.1."""

    def __init__(self, port):
        self.port = port
        self.headers = {}

    def call(self, method, target, body=None, ctype=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = dict(self.headers)
        if ctype:
            headers["content-type"] = ctype
        c.request(method, target, body, headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json_call(self, method, target, obj):
        return self.call(method, target, json.dumps(obj).encode(), "application/json")

    def multipart_call(self, method, target, fields, files):
        return self.call(method, target, multipart(fields, files),
                         "multipart/form-data; boundary=" + BOUNDARY)


def main():
    work = tempfile.mkdtemp(prefix="barton-mlclient-")
    server = None
    try:
        mmar = os.path.join(work, "spleen")
        shutil.copytree(os.path.join(ROOT, "mmars", "spleen_ct_seg", "config"),
                        os.path.join(mmar, "config"))
        # Sizes for small volumes written into the copy (the server's fine-tune runs the config
        # as it is, with no overrides).
        cfg_path = os.path.join(mmar, "config", "config_train.json")
        cfg = json.load(open(cfg_path))
        cfg["train"]["pre_transforms"][5]["args"]["spatial_size"] = [32, 32, 32]
        cfg["validate"]["inferer"]["args"]["roi_size"] = [48, 48, 48]
        cfg["amp"] = False
        json.dump(cfg, open(cfg_path, "w"), indent=1)
        env = dict(os.environ, BARTON_THREADS="1")
        subprocess.run([BARTON, "data", "synth", os.path.join(mmar, "data"), "--cases", "4",
                        "--size", "48", "48", "24", "--spacing", "3", "3", "6", "--seed", "1"],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        subprocess.run([BARTON, "train", mmar, "--set", "epochs=1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
        store = os.path.join(work, "datastore")
        os.makedirs(store)
        for f in sorted(os.listdir(os.path.join(mmar, "data", "imagesTr")))[:3]:
            shutil.copy(os.path.join(mmar, "data", "imagesTr", f), store)
        log = open(os.path.join(work, "serve.log"), "w")
        server = subprocess.Popen([BARTON, "serve", "--models", mmar, "--datastore", store,
                                   "--port", "0", "--work-dir", os.path.join(work, "w")],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
        port = None
        for _ in range(600):
            text = open(os.path.join(work, "serve.log")).read()
            if "listening on http://127.0.0.1:" in text:
                port = int(text.split("listening on http://127.0.0.1:")[1].split()[0])
                break
            time.sleep(0.05)
        check(port is not None, "the server prints its port")
        cl = Client(port)
        image = open(os.path.join(mmar, "data", "imagesTr", "case_3.nii.gz"), "rb").read()
        label_path = os.path.join(mmar, "data", "labelsTr", "case_0.nii.gz")

        # auth_enabled(): any non-200 means "no auth".
        s, _, _ = cl.call("GET", "/auth/")
        check(s != 200, "GET /auth/ is not 200 without --auth")
        # info()
        s, _, body = cl.call("GET", "/info/")
        info = json.loads(body)
        check(s == 200 and info["version"] and info["name"] and info["labels"],
              "info() has a version, a name and labels (MONAI Label's own test)")
        check(info["models"]["spleen"]["labels"] == {"spleen": 1}, "labels as {name: index}")
        check(set(info["strategies"]) >= {"random", "first", "tta"}, "strategies listed")
        check("spleen" in info["trainers"], "the MMAR is a trainer")
        # upload_image(): PUT /datastore/?image=ID with part 'file' (the deprecated route).
        s, _, body = cl.multipart_call("PUT", "/datastore/?image=uploaded", {"params": "{}"},
                                       {"file": ("/home/u/scan.nii.gz", image)})
        check(s == 200 and json.loads(body)["image"] == "uploaded", "upload_image")
        # save_label(): PUT /datastore/label?image=ID&tag=final with part 'label'.
        label = open(label_path, "rb").read()
        s, _, body = cl.multipart_call("PUT", "/datastore/label?image=case_0&tag=final",
                                       {"params": json.dumps({"label_names": {"spleen": 1},
                                                              "client_id": None})},
                                       {"label": ("label.nii.gz", label)})
        check(s == 200 and json.loads(body)["version"] == 1, "save_label: version 1")
        # datastore(): objects with labels per tag.
        s, _, body = cl.call("GET", "/datastore/?output=all")
        ds = json.loads(body)
        check(ds["objects"]["case_0"]["labels"]["final"]["info"]["params"]["label_names"]
              == {"spleen": 1}, "datastore() keeps the label's params")
        check("uploaded" in ds["objects"], "the uploaded image is listed")
        # download_label(): raw bytes with a filename in Content-Disposition.
        s, h, body = cl.call("GET", "/datastore/label?label=case_0&tag=final")
        check(s == 200 and 'filename="case_0.nii.gz"' in h.get("content-disposition", ""),
              "download_label has a filename")
        got = nib.Nifti1Image.from_bytes(gzip.decompress(body))
        ref = nib.load(label_path)
        check(np.array_equal(np.asarray(got.dataobj), np.asarray(ref.dataobj).astype(np.uint8))
              and np.allclose(got.affine, ref.affine), "the downloaded label is the saved one")
        # next_sample(): never the labelled image; {} shape otherwise has an id.
        s, _, body = cl.json_call("POST", "/activelearning/random", {"client_id": None})
        pick = json.loads(body)
        check(s == 200 and pick["id"] in ("case_1", "case_2", "uploaded"), "next_sample random")
        s, _, body = cl.json_call("POST", "/activelearning/tta", {})
        check(s == 200 and json.loads(body)["id"] in ("case_1", "case_2", "uploaded"),
              "next_sample tta")
        # create_session() with a 'files' part, as `requests` sends it; remove_session() JSON.
        s, _, body = cl.multipart_call("PUT", "/session/", {"client_id": "x"},
                                       {"files": ("case_3.nii.gz", image)})
        sid = json.loads(body)["session_id"] if s == 200 else None
        check(sid is not None, "create_session with a 'files' part")
        # infer() on the session and by image id: multipart, an NRRD when Slicer asks for one.
        s, h, body = cl.multipart_call("POST", f"/infer/spleen?session_id={sid}",
                                       {"params": json.dumps({"result_extension": ".nrrd",
                                                              "result_dtype": "uint8"})}, {})
        check(s == 200 and h["content-type"].startswith("multipart/") and b"NRRD" in body,
              "infer on a session answers multipart with an NRRD")
        s, _, body = cl.call("DELETE", f"/session/{sid}")
        check(s == 200 and json.loads(body)["name"] == "case_3.nii.gz",
              "remove_session answers JSON session_info")
        s, _, _ = cl.call("GET", f"/session/{sid}")
        check(s == 404, "a removed session is gone (404 on MONAI Label's route)")
        # train_start / train_status: 400 with one label, 429 while one runs.
        s, _, _ = cl.json_call("POST", "/train/spleen", {"max_epochs": 1})
        check(s == 400, "train needs at least two final labels")
        s, _, _ = cl.multipart_call("PUT", "/datastore/label?image=case_1", {"params": "{}"},
                                    {"label": ("l.nii.gz", open(os.path.join(
                                        mmar, "data", "labelsTr", "case_1.nii.gz"), "rb").read())})
        check(s == 200, "a second label")
        s, _, body = cl.json_call("POST", "/train/", {"model": "spleen", "max_epochs": 1})
        check(s == 200 and json.loads(body)["status"] == "RUNNING", "train_start")
        s2, _, _ = cl.json_call("POST", "/train/spleen", {})
        check(s2 == 429, "a second start answers 429")
        deadline = time.time() + 300
        status = {}
        while time.time() < deadline:
            s, _, body = cl.call("GET", "/train/")
            status = json.loads(body)
            if status.get("status") not in ("RUNNING", "STOPPING"):
                break
            time.sleep(0.5)
        check(status.get("status") == "DONE" and status.get("published") is True,
              f"the run ends DONE and is published ({status.get('status')}, "
              f"{status.get('exit')})")
        if status.get("status") != "DONE":
            print(status.get("log_tail", ""))
        s, _, _ = cl.call("GET", "/train/?check_if_running=true")
        check(s == 404, "check_if_running: 404 when none runs")
        s, _, body = cl.multipart_call("POST", "/infer/spleen?image=case_2&output=image",
                                       {"params": "{}"}, {})
        check(s == 200 and len(body) > 100, "the published model answers")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


main()
