#!/usr/bin/python3
"""Writes the seed requests of fuzz/serve_fuzz.cpp (one connection's bytes per file) in corpus/serve/:
script: every route of `barton serve` as the AIAA Python client, the AIAA C++ client (HTTP/1.0,
quoted boundary) and MONAI Label's client send them, with a small NIfTI volume where one is
uploaded. Run it again after adding a route; the files it writes are committed."""
import gzip
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "serve")


def nifti(nx=8, ny=8, nz=4):
    """A little-endian NIfTI-1 int16 volume with a 3 mm sform, gzip-compressed."""
    h = bytearray(352)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<hh", h, 70, 4, 16)  # int16
    struct.pack_into("<8f", h, 76, 1, 3, 3, 3, 1, 1, 1, 1)
    struct.pack_into("<f", h, 108, 352.0)
    struct.pack_into("<f", h, 112, 1.0)  # scl_slope
    struct.pack_into("<hh", h, 252, 0, 1)  # qform 0, sform 1
    struct.pack_into("<12f", h, 280, 3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 3, 0)
    h[344:348] = b"n+1\0"
    voxels = b"".join(struct.pack("<h", (i * 37) % 300 - 100) for i in range(nx * ny * nz))
    return gzip.compress(bytes(h) + voxels, mtime=0)


def multipart(fields, boundary, quoted=False):
    body = b""
    for name, filename, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    ctype = f'multipart/form-data; boundary="{boundary}"' if quoted else \
        f"multipart/form-data; boundary={boundary}"
    return ctype, body


def request(method, target, body=b"", ctype=None, version="HTTP/1.1", extra=""):
    head = f"{method} {target} {version}\r\nHost: 127.0.0.1\r\n{extra}"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def main():
    vol = nifti()
    py_b, cpp_b = "9ab3$c0d1e2f", "----BartonBoundary7MA4YWxk"
    seeds = {
        "get_root": request("GET", "/"),
        "get_models": request("GET", "/v1/models"),
        "get_models_filtered": request("GET", "/v1/models?label=spleen&type=segmentation"),
        "get_model_by_name": request("GET", "/v1/models?model=tiny"),
        "get_logs": request("GET", "/logs?lines=5"),
        "get_info": request("GET", "/info/"),
        "get_info_noslash": request("GET", "/info"),
        "get_datastore": request("GET", "/datastore/?output=all"),
        "get_session_unknown": request("GET", "/session/0f0e0d0c-0b0a-4908-8706-050403020100"),
        "delete_session_unknown": request("DELETE", "/session/abc", extra="Content-Length: 4\r\n"),
        "head_models": request("HEAD", "/v1/models"),
        "unknown_route": request("GET", "/v2/nothing%20here?x=+1"),
        "wrong_method": request("PATCH", "/v1/models"),
        "pipelined": request("GET", "/info/") + request("GET", "/v1/models?model=tiny"),
        "traversal": request("POST", "/infer/..%2F..%2Fetc?image=..%2Fx"),
    }
    ctype, body = multipart([("params", None, b'{"foo": 1}'),
                             ("datapoint", "image.nii.gz", vol)], py_b)
    seeds["aiaa_segmentation_python"] = request("POST", "/v1/segmentation?model=tiny", body, ctype)
    seeds["aiaa_inference_python"] = request("POST", "/v1/inference?model=tiny&output=image",
                                             body, ctype)
    seeds["aiaa_deepgrow"] = request(
        "POST", "/v1/deepgrow?model=tiny",
        *multipart([("params", None, b'{"foreground": [[1, 2, 1]], "background": []}'),
                    ("datapoint", "image.nii.gz", vol)], py_b)[::-1])
    seeds["aiaa_dextr3d"] = request(
        "POST", "/v1/dextr3d?model=tiny",
        *multipart([("params", None, b'{"points": [[0,1,1],[7,1,1],[3,0,1],[3,7,1],[3,3,0],[3,3,3]]}'),
                    ("datapoint", "image.nii.gz", vol)], py_b)[::-1])
    ctype, body = multipart([("params", None, b"{}"), ("image", "image.nii.gz", vol)], cpp_b,
                            quoted=True)
    seeds["aiaa_segmentation_cpp"] = request("POST", "/v1/segmentation?model=tiny", body, ctype,
                                             version="HTTP/1.0")
    ctype, body = multipart([("image0", "s0.nii.gz", vol), ("image1", "s1.nii.gz", vol)], py_b)
    seeds["session_put"] = request("PUT", "/session/?expiry=60", body, ctype)
    ctype, body = multipart([("params", None, b'{"label_info": []}'),
                             ("file", "image.nii.gz", vol)], py_b)
    seeds["monailabel_infer_upload"] = request("POST", "/infer/tiny?output=all", body, ctype)
    seeds["monailabel_infer_datastore"] = request("POST", "/infer/tiny?image=case_0&output=image",
                                                  b"{}", "application/json")
    seeds["monailabel_infer_nrrd"] = request(
        "POST", "/infer/tiny?image=case_1",
        b'{"result_extension": ".nrrd", "result_dtype": "uint8"}', "application/json")
    # Datastore, active learning, training, auth and polygons (session 13).
    ctype, body = multipart([("params", None, b'{"client_id": null, "label_names": {"spleen": 1}}'),
                             ("label", "label.bin", bytes(i % 2 for i in range(8 * 8 * 4)))], py_b)
    seeds["datastore_label_put_raw"] = request("PUT", "/datastore/label?image=case_0&tag=final",
                                               body, ctype)
    ctype, body = multipart([("params", None, b"{}"), ("label", "label.nii.gz", vol)], py_b)
    seeds["datastore_label_put_nifti"] = request("PUT", "/datastore/label?image=case_1", body, ctype)
    seeds["datastore_label_get"] = request("GET", "/datastore/label?label=case_0&tag=final&version=1")
    seeds["datastore_image_get"] = request("GET", "/datastore/image?image=case_2")
    ctype, body = multipart([("params", None, b"{}"), ("file", "new.nii.gz", vol)], py_b)
    seeds["datastore_image_put"] = request("PUT", "/datastore/image?image=new_case", body, ctype)
    for strategy in ("first", "random", "tta"):
        seeds[f"activelearning_{strategy}"] = request(
            "POST", f"/activelearning/{strategy}", b'{"client_id": null, "seed": 3}',
            "application/json")
    seeds["train_start"] = request("POST", "/train/tiny", b'{"max_epochs": 1}', "application/json")
    seeds["train_status"] = request("GET", "/train/?check_if_running=true")
    seeds["train_stop"] = request("DELETE", "/train/")
    seeds["auth_token"] = request("POST", "/auth/token", b"username=ana&password=x&grant_type=password",
                                  "application/x-www-form-urlencoded")
    ctype, body = multipart([("params", None, b'{"more_points": 2}'),
                             ("datapoint", "mask.nii.gz", vol)], py_b)
    seeds["mask2polygon"] = request("POST", "/v1/mask2polygon", body, ctype)
    png = bytes.fromhex("89504e470d0a1a0a0000000d494844520000000800000008080000000000")
    ctype, body = multipart([("params", None, b'{"poly": [[[1,1],[6,1],[6,6]]], "vertex_offset": [1,1],'
                                              b' "dimension": 2, "polygon_index": 0, "vertex_index": 1,'
                                              b' "propagate_neighbor": 1}'),
                             ("datapoint", "slice.png", png)], py_b)
    seeds["fixpolygon_2d"] = request("POST", "/v1/fixpolygon", body, ctype)
    # The DeepGrow 3D model (session 18): clicks by AIAA and MONAI Label, a session's clicks.
    big = nifti(24, 24, 10)
    seeds["deepgrow3d_aiaa_clicks"] = request(
        "POST", "/v1/deepgrow?model=deepgrow_3d",
        *multipart([("params", None, b'{"foreground": [[12, 12, 5]], "background": [[2, 3, 1]]}'),
                    ("datapoint", "image.nii.gz", big)], py_b)[::-1])
    seeds["deepgrow3d_aiaa_no_clicks"] = request(
        "POST", "/v1/deepgrow?model=deepgrow_3d",
        *multipart([("params", None, b'{"foreground": [], "background": []}'),
                    ("datapoint", "image.nii.gz", big)], py_b)[::-1])
    seeds["deepgrow3d_monailabel_datastore"] = request(
        "POST", "/infer/deepgrow_3d?image=case_0&output=image",
        *multipart([("params", None, b'{"foreground": [[20, 20, 8]], "background": [], "label": "spleen"}')],
                   py_b)[::-1])
    ctype, body = multipart([("params", None, b'{"foreground": [[12, 12, 5]], "background": []}'),
                             ("file", "image.nii.gz", big)], py_b)
    seeds["deepgrow3d_monailabel_upload"] = request("POST", "/infer/deepgrow_3d?output=all", body,
                                                    ctype)
    ctype, body = multipart([("image", "image.nii.gz", big)], py_b)
    seeds["deepgrow3d_session_then_click"] = request("PUT", "/session/?expiry=60", body, ctype) + \
        request("POST", "/v1/deepgrow?model=deepgrow_3d&session_id=0f0e0d0c-0b0a-4908-8706-050403020100",
                *multipart([("params", None, b'{"foreground": [[12, 12, 5]], "background": []}')],
                           py_b)[::-1])
    seeds["deepgrow3d_model_info"] = request("GET", "/v1/models?model=deepgrow_3d")
    for name, data in seeds.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
