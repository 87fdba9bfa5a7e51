#!/usr/bin/python3
"""Independent reference reader for Barton's IO tests (run with Debian's /usr/bin/python3).

usage: dump_image.py nifti|dicom PATH OUT_RAW [SERIES_UID]
Writes the voxels as little-endian float64 in Barton's layout ([C, I, J, K], C order) to OUT_RAW
and prints {"shape": [...], "affine": [[...]x4]} as JSON on stdout.
nifti: nibabel (MONAI's default reader), affine = img.affine (sform > qform > base), scaling applied.
dicom: pydicom; slices sorted along the normal of ImageOrientationPatient, rescale applied,
       LPS affine built from IPP/IOP/PixelSpacing, converted to RAS.
"""
import json
import os
import sys

import numpy as np


def nifti(path):
    import nibabel as nib
    img = nib.load(path)
    data = np.asanyarray(img.dataobj).astype(np.float64)
    spatial = min(max(len(img.shape), 2), 3)
    if data.ndim < spatial:
        data = data.reshape(data.shape + (1,) * (spatial - data.ndim))
    sp = data.shape[:spatial]
    data = data.reshape(sp + (-1,), order="F")  # flatten extra dims (t, u, ...) into channels
    data = np.moveaxis(data, -1, 0)
    return data, img.affine


def dicom(folder, uid=None):
    import pydicom
    slices = []
    for name in sorted(os.listdir(folder)):
        ds = pydicom.dcmread(os.path.join(folder, name))
        if uid and ds.SeriesInstanceUID != uid:
            continue
        slices.append(ds)
    iop = np.array(slices[0].ImageOrientationPatient, dtype=float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    slices.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)))
    pos = [float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)) for d in slices]
    dz = (pos[-1] - pos[0]) / (len(pos) - 1) if len(pos) > 1 else 1.0
    vol = []
    for d in slices:
        arr = d.pixel_array.astype(np.float64)  # [rows, cols]
        arr = arr * float(getattr(d, "RescaleSlope", 1)) + float(getattr(d, "RescaleIntercept", 0))
        vol.append(arr.T)  # [cols (i), rows (j)]
    data = np.stack(vol, axis=-1)[None]  # [1, I, J, K]
    ps = [float(v) for v in slices[0].PixelSpacing]
    lps = np.eye(4)
    lps[:3, 0] = row * ps[1]
    lps[:3, 1] = col * ps[0]
    lps[:3, 2] = normal * dz
    lps[:3, 3] = np.array(slices[0].ImagePositionPatient, dtype=float)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return data, ras


def main():
    kind, path, out = sys.argv[1:4]
    uid = sys.argv[4] if len(sys.argv) > 4 else None
    data, affine = nifti(path) if kind == "nifti" else dicom(path, uid)
    np.ascontiguousarray(data, dtype="<f8").tofile(out)
    print(json.dumps({"shape": list(data.shape), "affine": np.asarray(affine, dtype=float).tolist()}))


if __name__ == "__main__":
    main()
