"""Writes a synthetic CT series for bench/dicom_bench: N slices of ROWSxCOLS int16 from pydicom's
CT_small.dcm (its header, new pixels, positions 2.5 mm apart, one series UID).
Usage: dicom_series.py OUT_DIR [--slices 100] [--size 512]"""
import argparse, os
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--slices", type=int, default=100)
ap.add_argument("--size", type=int, default=512)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
series = generate_uid()
rng = np.random.default_rng(0)
for k in range(a.slices):
    d = src.copy()
    d.SeriesInstanceUID = series
    d.SOPInstanceUID = generate_uid()
    d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
    d.Rows = d.Columns = a.size
    d.ImagePositionPatient = [-128.0, -128.0, 2.5 * k]
    d.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    d.PixelSpacing = [0.7, 0.7]
    d.SliceThickness = 2.5
    d.InstanceNumber = k + 1
    d.PixelData = rng.integers(0, 2000, (a.size, a.size), dtype=np.int16).tobytes()
    d.save_as(os.path.join(a.out, f"slice_{k:04d}.dcm"))
