#!/usr/bin/python3
"""Self-checks of the intensity/post/utility twin (intensity.py) against hand-computed values and the
examples printed in MONAI's docstrings. Run: /usr/bin/python3 tests/golden/monai_twin/test_intensity_twin.py
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import intensity as T  # noqa: E402


class Item:  # same interface as run.Item (not imported: run.py also imports spatial.py)
    def __init__(self, data, affine=None, dtype="float32"):
        self.data = np.asarray(data, dtype=np.float64)
        self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        self.dtype = dtype


def run(name, sample, args, params=None):
    return T.TRANSFORMS[name](sample, args, params or {})


def close(a, b, tol=1e-6):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, atol=tol, rtol=tol), (a, b)


def raises(fn, exc=Exception):
    try:
        fn()
    except exc:
        return
    raise AssertionError("expected an exception")


ROWS = np.tile(np.arange(1, 6, dtype=float), (6, 1))[None]  # MONAI docstring image [[1..5] x 6]


def test_scale_intensity_range():
    s = {"image": Item([[[-57.0, 53.5, 164.0, 300.0]]])}
    o = run("ScaleIntensityRanged", s, {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0,
                                        "clip": True})["image"]
    close(o.data, [[[0.0, 0.5, 1.0, 1.0]]])
    assert o.dtype == "float32"
    # no clip, b_min/b_max None: only normalised
    o = run("ScaleIntensityRanged", s, {"keys": "image", "a_min": -57, "a_max": 164})["image"]
    close(o.data, [[[0.0, 0.5, 1.0, 357.0 / 221.0]]])
    # one-sided clip: b_min None skips scaling, clamps the max only
    o = run("ScaleIntensityRanged", s, {"keys": "image", "a_min": -57, "a_max": 164, "b_max": 0.75, "clip": True})
    close(o["image"].data, [[[0.0, 0.5, 0.75, 0.75]]])
    raises(lambda: run("ScaleIntensityRanged", s, {"keys": "image", "a_min": 0, "a_max": 1, "clip": True}))
    # a_min == a_max: img - a_min + b_min, no clip, no dtype conversion
    o = run("ScaleIntensityRanged", s, {"keys": "image", "a_min": 2, "a_max": 2, "b_min": 5.0, "b_max": 6.0,
                                        "clip": True})["image"]
    close(o.data, [[[-54.0, 56.5, 167.0, 303.0]]])
    si = {"label": Item([[[3.0, 7.0]]], dtype="int16")}
    o = run("ScaleIntensityRanged", si, {"keys": "label", "a_min": 1, "a_max": 1})["label"]
    assert o.dtype == "int16" and o.data.tolist() == [[[2.0, 6.0]]]
    o = run("ScaleIntensityRanged", si, {"keys": "label", "a_min": 1, "a_max": 1, "b_min": 0.5})["label"]
    assert o.dtype == "float32"
    # decreasing map and dtype null (keep input dtype, ints truncate)
    o = run("ScaleIntensityRanged", si, {"keys": "label", "a_min": 0, "a_max": 10, "b_min": 0, "b_max": 10,
                                         "dtype": None})["label"]
    assert o.dtype == "int16"


def test_scale_intensity_range_percentiles():
    s = {"image": Item(ROWS)}
    o = run("ScaleIntensityRangePercentilesd", s, {"keys": "image", "lower": 10, "upper": 90, "b_min": 0,
                                                   "b_max": 200})["image"]
    close(o.data[0, 0], [0, 50, 100, 150, 200])
    o = run("ScaleIntensityRangePercentilesd", s, {"keys": "image", "lower": 10, "upper": 90, "b_min": 0,
                                                   "b_max": 200, "relative": True})["image"]
    close(o.data[0, 0], [20, 60, 100, 140, 180])
    # constant channel: a_min == a_max -> b_min everywhere, no clip
    s2 = {"image": Item(np.stack([np.full((2, 2), 7.0), np.arange(4.0).reshape(2, 2)]))}
    o = run("ScaleIntensityRangePercentilesd", s2, {"keys": "image", "lower": 0, "upper": 100, "b_min": -1.0,
                                                    "b_max": 1.0, "channel_wise": True})["image"]
    close(o.data[0], np.full((2, 2), -1.0))
    close(o.data[1], [[-1, -1 + 2 / 3], [-1 + 4 / 3, 1]])
    # pooled percentiles when not channel_wise: min 0, max 7
    o = run("ScaleIntensityRangePercentilesd", s2, {"keys": "image", "lower": 0, "upper": 100, "b_min": 0.0,
                                                    "b_max": 7.0})["image"]
    close(o.data, s2["image"].data)
    # percentile definition: linear interpolation, r = q/100 (n-1)
    assert abs(T.percentile([0, 10, 20, 40], 50) - 15.0) < 1e-12
    assert abs(T.percentile([0, 10, 20, 40], 90) - 34.0) < 1e-12
    raises(lambda: run("ScaleIntensityRangePercentilesd", {"l": Item(ROWS, dtype="int16")},
                       {"keys": "l", "lower": 1, "upper": 99, "b_min": 0, "b_max": 1}))


def test_clip_intensity_percentiles():
    s = {"image": Item(ROWS)}
    o = run("ClipIntensityPercentilesd", s, {"keys": "image", "lower": 30, "upper": 70})["image"]
    close(o.data[0, 0], [2, 2, 3, 4, 4])
    o = run("ClipIntensityPercentilesd", s, {"keys": "image", "lower": None, "upper": 70})["image"]
    close(o.data[0, 0], [1, 2, 3, 4, 4])
    o = run("ClipIntensityPercentilesd", s, {"keys": "image", "lower": 30, "upper": 70,
                                             "sharpness_factor": 10.0})["image"]
    close(o.data[0, 0], [2.0000, 2.0693, 3.0000, 3.9307, 4.0000], tol=1e-4)  # MONAI docstring values
    raises(lambda: run("ClipIntensityPercentilesd", s, {"keys": "image", "lower": None, "upper": None}))


def test_normalize_intensity():
    s = {"image": Item([[[1.0, 2.0, 3.0, 4.0]]])}
    o = run("NormalizeIntensityd", s, {"keys": "image"})["image"]
    sd = math.sqrt(1.25)  # population std
    close(o.data, [[[(v - 2.5) / sd for v in (1, 2, 3, 4)]]])
    assert o.dtype == "float32"
    # nonzero: zeros untouched, stats over non-zero voxels only
    s = {"image": Item([[[0.0, 2.0, 4.0, 0.0]]])}
    o = run("NormalizeIntensityd", s, {"keys": "image", "nonzero": True})["image"]
    close(o.data, [[[0.0, -1.0, 1.0, 0.0]]])
    # constant image: std 0 -> divisor 1 -> zeros; given divisor 0 -> 1
    o = run("NormalizeIntensityd", {"image": Item(np.full((1, 3, 3), 5.0))}, {"keys": "image"})["image"]
    close(o.data, np.zeros((1, 3, 3)))
    o = run("NormalizeIntensityd", {"image": Item([[[1.0, 3.0]]])}, {"keys": "image", "subtrahend": 1.0,
                                                                     "divisor": 0.0})["image"]
    close(o.data, [[[0.0, 2.0]]])
    # constant image whose float32 mean is inexact: torch's std is a tiny non-zero -> MONAI gives -1, not 0
    o = run("NormalizeIntensityd", {"image": Item(np.full((1, 10, 10, 10), float(np.float32(0.1))))},
            {"keys": "image"})["image"]
    close(o.data, np.full((1, 10, 10, 10), -1.0))
    # all-zero channel with nonzero=True: unchanged
    x = np.stack([np.zeros((2, 2)), np.array([[1.0, 0.0], [3.0, 0.0]])])
    o = run("NormalizeIntensityd", {"image": Item(x)}, {"keys": "image", "nonzero": True, "channel_wise": True})
    close(o["image"].data, [np.zeros((2, 2)), [[-1.0, 0.0], [1.0, 0.0]]])
    # channel_wise with given per-channel subtrahend/divisor
    o = run("NormalizeIntensityd", {"image": Item(x)}, {"keys": "image", "channel_wise": True,
                                                       "subtrahend": [1.0, 2.0], "divisor": [2.0, 0.0]})
    close(o["image"].data, [np.full((2, 2), -0.5), [[-1.0, -2.0], [1.0, -2.0]]])
    # channel_wise on an integer tensor: per-channel results are truncated (written back into the int tensor)
    xi = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    o = run("NormalizeIntensityd", {"l": Item(xi, dtype="int16")}, {"keys": "l", "channel_wise": True})["l"]
    z = (np.array([0, 1, 2, 3]) - 1.5) / math.sqrt(1.25)
    close(o.data, np.trunc(z)[None, None])
    assert o.dtype == "float32"
    o = run("NormalizeIntensityd", {"l": Item(xi, dtype="int16")}, {"keys": "l"})["l"]
    close(o.data, z[None, None])


def test_scale_intensity():
    s = {"image": Item([[[2.0, 4.0, 6.0]]])}
    close(run("ScaleIntensityd", s, {"keys": "image"})["image"].data, [[[0.0, 0.5, 1.0]]])
    close(run("ScaleIntensityd", s, {"keys": "image", "minv": -1.0, "maxv": 1.0})["image"].data, [[[-1, 0, 1]]])
    # one bound None -> plain 0..1 normalisation
    close(run("ScaleIntensityd", s, {"keys": "image", "minv": None, "maxv": 5.0})["image"].data, [[[0, 0.5, 1]]])
    # factor form
    close(run("ScaleIntensityd", s, {"keys": "image", "minv": None, "maxv": None, "factor": 0.5})["image"].data,
          [[[3.0, 6.0, 9.0]]])
    # constant image: img * minv
    c = {"image": Item(np.full((1, 2, 2), 3.0))}
    close(run("ScaleIntensityd", c, {"keys": "image"})["image"].data, np.zeros((1, 2, 2)))
    close(run("ScaleIntensityd", c, {"keys": "image", "minv": 1.0, "maxv": 2.0})["image"].data, np.full((1, 2, 2), 3.0))
    close(run("ScaleIntensityd", c, {"keys": "image", "minv": 2.0, "maxv": 4.0})["image"].data, np.full((1, 2, 2), 6.0))
    # channel_wise
    x = np.array([[[0.0, 10.0]], [[5.0, 5.0]]])
    o = run("ScaleIntensityd", {"image": Item(x)}, {"keys": "image", "channel_wise": True})["image"]
    close(o.data, [[[0.0, 1.0]], [[0.0, 0.0]]])


def test_rand_scale_and_shift():
    s = {"image": Item([[[1.0, 2.0]], [[3.0, 4.0]]], dtype="int16")}
    o = run("RandScaleIntensityd", s, {"keys": "image", "factors": 0.5, "prob": 1.0}, {"factor": 0.25})["image"]
    close(o.data, [[[1.25, 2.5]], [[3.75, 5.0]]])
    assert o.dtype == "float32"
    o = run("RandScaleIntensityd", s, {"keys": "image", "factors": 0.5, "channel_wise": True},
            {"factor": [0.0, -0.5]})["image"]
    close(o.data, [[[1.0, 2.0]], [[1.5, 2.0]]])
    o = run("RandScaleIntensityd", s, {"keys": "image", "factors": 0.5}, {"do_transform": False})["image"]
    assert o.dtype == "float32"  # still cast to dtype when skipped
    # shift keeps the input dtype; int truncates toward zero
    o = run("RandShiftIntensityd", s, {"keys": "image", "offsets": 1.0}, {"offset": -1.5})["image"]
    close(o.data, [[[0.0, 0.0]], [[1.0, 2.0]]])
    assert o.dtype == "int16"
    f = {"image": Item([[[1.0, 2.0]], [[3.0, 4.0]]])}
    o = run("RandShiftIntensityd", f, {"keys": "image", "offsets": [0, 2], "channel_wise": True},
            {"offset": [0.5, 1.0]})["image"]
    close(o.data, [[[1.5, 2.5]], [[4.0, 5.0]]])
    o = run("ShiftIntensityd", {"u": Item([[[250.0, 3.0]]], dtype="uint8")}, {"keys": "u", "offset": 10, "safe": True})
    close(o["u"].data, [[[255.0, 13.0]]])


def test_threshold():
    s = {"image": Item([[[0.0, 1.0, 2.0, 3.0]]])}
    close(run("ThresholdIntensityd", s, {"keys": "image", "threshold": 1, "above": True, "cval": -1})["image"].data,
          [[[-1, -1, 2, 3]]])
    close(run("ThresholdIntensityd", s, {"keys": "image", "threshold": 2, "above": False})["image"].data,
          [[[0, 1, 0, 0]]])
    # float32 comparison: float32(0.1) is not > 0.1 once the scalar is rounded to float32 too
    v = float(np.float32(0.1))
    o = run("ThresholdIntensityd", {"image": Item([[[v]]])}, {"keys": "image", "threshold": 0.1, "cval": 9})
    close(o["image"].data, [[[9.0]]])
    # int image: cval cast to int
    o = run("ThresholdIntensityd", {"l": Item([[[1.0, 5.0]]], dtype="int16")}, {"keys": "l", "threshold": 2,
                                                                               "cval": 0.7})
    close(o["l"].data, [[[0.0, 5.0]]])


def test_gaussian():
    k = T.gaussian_kernel_1d(1.0)
    assert len(k) == 9  # tail = int(4*1 + 0.5) = 4
    close(k[4], math.erf(0.5 / math.sqrt(2)), tol=1e-7)
    close(k.sum(), math.erf(4.5 / math.sqrt(2)), tol=1e-7)  # not normalised
    assert len(T.gaussian_kernel_1d(0.1)) == 3  # tail = int(max(0.4, 0.5) + 0.5) = 1
    assert len(T.gaussian_kernel_1d(0.625)) == 7  # 2.5 + 0.5 = 3
    close(T.gaussian_kernel_1d(0.0), [0, 1, 0])
    # delta -> separable outer product of kernels, zero padding at the border
    x = np.zeros((1, 11, 11))
    x[0, 5, 5] = 1.0
    o = run("GaussianSmoothd", {"image": Item(x)}, {"keys": "image", "sigma": [1.0, 0.5]})["image"]
    k2 = T.gaussian_kernel_1d(0.5)
    ref = np.zeros((11, 11))
    ref[1:10, 3:8] = np.outer(k, k2)
    close(o.data[0], ref, tol=1e-6)
    assert o.dtype == "float32"
    # constant image: interior = sum(k)^2, corner much darker (zero padding)
    o = run("GaussianSmoothd", {"image": Item(np.ones((1, 12, 12)))}, {"keys": "image", "sigma": 1.0})["image"]
    close(o.data[0, 6, 6], k.sum() ** 2, tol=1e-6)
    close(o.data[0, 0, 0], k[4:].sum() ** 2, tol=1e-6)
    o = run("RandGaussianSmoothd", {"image": Item(x)}, {"keys": "image"}, {"sigma": [1.0, 0.5, 0.9]})["image"]
    close(o.data[0], ref, tol=1e-6)


def test_noise():
    s = {"image": Item([[[1.0, 2.0]]], dtype="int16"), "noise": Item([[[0.25, -0.5]]], dtype="float64")}
    o = run("RandGaussianNoised", s, {"keys": "image", "prob": 1.0, "std": 0.1}, {"noise_key": "noise"})
    close(o["image"].data, [[[1.25, 1.5]]])
    assert o["image"].dtype == "float32" and "noise" not in o
    o = run("RandGaussianNoised", s, {"keys": "image"}, {"do_transform": False})
    assert o["image"].dtype == "int16"


def test_adjust_contrast():
    s = {"image": Item([[[0.0, 1.0, 2.0, 4.0]]])}
    close(run("AdjustContrastd", s, {"keys": "image", "gamma": 2})["image"].data, [[[0.0, 0.25, 1.0, 4.0]]])
    close(run("AdjustContrastd", s, {"keys": "image", "gamma": 2, "invert_image": True})["image"].data,
          [[[0.0, 1.75, 3.0, 4.0]]])
    # range 1: eps survives float32 rounding (1 + 1e-7 -> 1.00000012)
    o = run("AdjustContrastd", {"image": Item([[[0.0, 1.0]]])}, {"keys": "image", "gamma": 1})["image"]
    close(o.data, [[[0.0, 1.0 / float(np.float32(1) + np.float32(1e-7))]]], tol=1e-9)
    # retain_stats: mean and (unbiased) std restored
    x = np.array([[[0.0, 1.0, 2.0, 4.0, 7.0]]])
    o = run("AdjustContrastd", {"image": Item(x)}, {"keys": "image", "gamma": 2.5, "retain_stats": True})["image"]
    close(o.data.mean(), x.mean(), tol=1e-5)
    close(o.data.std(ddof=1), x.std(ddof=1), tol=1e-5)
    # constant image stays constant
    close(run("AdjustContrastd", {"image": Item(np.full((1, 2, 2), 3.0))}, {"keys": "image", "gamma": 0.7})
          ["image"].data, np.full((1, 2, 2), 3.0))
    raises(lambda: run("RandAdjustContrastd", s, {"keys": "image", "gamma": 0.4}, {"gamma": 0.45}))
    close(run("RandAdjustContrastd", s, {"keys": "image", "gamma": 3}, {"gamma": 2})["image"].data,
          [[[0.0, 0.25, 1.0, 4.0]]])


def test_histogram_shift():
    s = {"image": Item([[[0.0, 1.0, 2.0, 3.0, 4.0]]])}
    o = run("RandHistogramShiftd", s, {"keys": "image", "num_control_points": 3},
            {"floating_control_points": [0.0, 0.25, 1.0]})["image"]
    close(o.data, [[[0.0, 0.5, 1.0, 2.5, 4.0]]])
    c = {"image": Item(np.full((1, 2), 5.0))}
    close(run("RandHistogramShiftd", c, {"keys": "image"}, {"floating_control_points": [0, 0.1, 1]})
          ["image"].data, [[5.0, 5.0]])


def test_activations():
    x = np.array([[[0.0, 1.0]], [[math.log(3.0), 1.0]]])
    o = run("Activationsd", {"pred": Item(x)}, {"keys": "pred", "softmax": True})["pred"]
    close(o.data, [[[0.25, 0.5]], [[0.75, 0.5]]])
    o = run("Activationsd", {"pred": Item(x)}, {"keys": "pred", "sigmoid": True})["pred"]
    close(o.data[0, 0, 0], 0.5)
    o = run("Activationsd", {"a": Item(x), "b": Item(x)}, {"keys": ["a", "b"], "sigmoid": [True, False]})
    close(o["b"].data, x)


def test_as_discrete():
    x = np.array([[[0.0, 1.0]], [[2.0, 3.0]]])  # MONAI docstring examples
    close(run("AsDiscreted", {"p": Item(x)}, {"keys": "p", "argmax": True})["p"].data, [[[1.0, 1.0]]])
    y = np.array([[[0.0, 0.5], [0.8, 3.0]]])
    close(run("AsDiscreted", {"p": Item(y)}, {"keys": "p", "threshold": 0.6})["p"].data, [[[0, 0], [1, 1]]])
    o = run("AsDiscreted", {"p": Item(x)}, {"keys": "p", "argmax": True, "to_onehot": 2, "threshold": 0.5})["p"]
    close(o.data, [[[0.0, 0.0]], [[1.0, 1.0]]])
    assert o.dtype == "float32"
    # threshold is inclusive
    close(run("AsDiscreted", {"p": Item([[[0.5]]])}, {"keys": "p", "threshold": 0.5})["p"].data, [[[1.0]]])
    # argmax ties -> first channel
    close(run("AsDiscreted", {"p": Item([[[1.0]], [[1.0]]])}, {"keys": "p", "argmax": True})["p"].data, [[[0.0]]])
    # one-hot truncates label values
    o = run("AsDiscreted", {"l": Item([[[0.0, 1.7, 2.2]]])}, {"keys": "l", "to_onehot": 3})["l"]
    close(o.data, [[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]])
    raises(lambda: run("AsDiscreted", {"l": Item([[[3.0]]])}, {"keys": "l", "to_onehot": 3}))
    # torch rounding: half to even
    close(run("AsDiscreted", {"p": Item([[[0.5, 1.5, 2.5, -0.5]]])}, {"keys": "p", "rounding": "torchrounding"})
          ["p"].data, [[[0.0, 2.0, 2.0, 0.0]]])
    raises(lambda: run("AsDiscreted", {"p": Item(y)}, {"keys": "p", "threshold": 0.5, "rounding": "torchrounding"}))
    # deprecated Clara 4.x arguments, per key
    s = {"pred": Item(x), "label": Item([[[1.0, 0.0]]])}
    o = run("AsDiscreted", s, {"keys": ["pred", "label"], "argmax": [True, False], "to_onehot": True,
                               "n_classes": 2})
    close(o["pred"].data, [[[0.0, 0.0]], [[1.0, 1.0]]])
    close(o["label"].data, [[[0.0, 1.0]], [[1.0, 0.0]]])
    o = run("AsDiscreted", {"p": Item(y)}, {"keys": "p", "threshold_values": True, "logit_thresh": 0.6})["p"]
    close(o.data, [[[0, 0], [1, 1]]])
    o = run("AsDiscreted", {"p": Item(y)}, {"keys": "p", "threshold_values": False})["p"]
    close(o.data, y)


def test_keep_largest():
    a = np.array([[1, 0, 0], [0, 1, 1], [0, 1, 1]], float)[None]
    o = run("KeepLargestConnectedComponentd", {"l": Item(a)}, {"keys": "l", "applied_labels": [1],
                                                               "connectivity": 1})["l"]
    close(o.data, [[[0, 0, 0], [0, 1, 1], [0, 1, 1]]])
    # default connectivity is full: the diagonal voxel joins
    o = run("KeepLargestConnectedComponentd", {"l": Item(a)}, {"keys": "l", "applied_labels": [1]})["l"]
    close(o.data, a)
    b = np.array([[0, 0, 1, 0, 0], [0, 2, 1, 1, 1], [1, 2, 1, 0, 0], [1, 2, 0, 1, 0], [2, 2, 0, 0, 2]], float)[None]
    o = run("KeepLargestConnectedComponentd", {"l": Item(b)}, {"keys": "l", "applied_labels": [1, 2],
                                                               "independent": False, "connectivity": 1})["l"]
    close(o.data, [[[0, 0, 1, 0, 0], [0, 2, 1, 1, 1], [1, 2, 1, 0, 0], [1, 2, 0, 0, 0], [2, 2, 0, 0, 0]]])
    o = run("KeepLargestConnectedComponentd", {"l": Item(b)}, {"keys": "l", "applied_labels": [1, 2],
                                                               "independent": True, "connectivity": 1})["l"]
    close(o.data, [[[0, 0, 1, 0, 0], [0, 2, 1, 1, 1], [0, 2, 1, 0, 0], [0, 2, 0, 0, 0], [2, 2, 0, 0, 0]]])
    o = run("KeepLargestConnectedComponentd", {"l": Item(b)}, {"keys": "l", "applied_labels": [1, 2],
                                                               "independent": False, "connectivity": 2})["l"]
    close(o.data, b)
    # num_components and one-hot (channel 0 is never processed when applied_labels is None)
    c = np.array([[1, 1, 0, 1, 0, 1, 1, 1]], float)[None]
    o = run("KeepLargestConnectedComponentd", {"l": Item(c)}, {"keys": "l", "num_components": 2})["l"]
    close(o.data, [[[1, 1, 0, 0, 0, 1, 1, 1]]])
    oh = np.concatenate([1 - c, c])
    o = run("KeepLargestConnectedComponentd", {"l": Item(oh)}, {"keys": "l"})["l"]
    close(o.data, np.concatenate([1 - c, [[[0, 0, 0, 0, 0, 1, 1, 1]]]]))
    # tie: the component whose first voxel comes later in C order wins (stable argsort reversed)
    t = np.array([[1, 1, 0, 1, 1]], float)[None]
    o = run("KeepLargestConnectedComponentd", {"l": Item(t)}, {"keys": "l"})["l"]
    close(o.data, [[[0, 0, 0, 1, 1]]])


def test_fill_holes():
    x = np.array([[1, 1, 1, 2, 2, 2, 3, 3], [1, 0, 1, 2, 0, 0, 3, 0], [1, 1, 1, 2, 2, 2, 3, 3]], float)[None]
    o = run("FillHolesd", {"l": Item(x)}, {"keys": "l"})["l"]
    close(o.data, [[[1, 1, 1, 2, 2, 2, 3, 3], [1, 1, 1, 2, 0, 0, 3, 0], [1, 1, 1, 2, 2, 2, 3, 3]]])
    # connectivity: a hole reachable only diagonally from the border is filled with connectivity=1
    r = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], float)[None]
    o1 = run("FillHolesd", {"l": Item(r)}, {"keys": "l", "connectivity": 1})["l"]
    o2 = run("FillHolesd", {"l": Item(r)}, {"keys": "l"})["l"]
    assert o1.data[0, 1, 1] == 1 and o2.data[0, 1, 1] == 0
    # other labels enclosed by a label are overwritten
    e = np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]], float)[None]
    close(run("FillHolesd", {"l": Item(e)}, {"keys": "l", "applied_labels": [1]})["l"].data, np.ones((1, 3, 3)))
    # one-hot
    oh = np.stack([1 - np.pad(np.ones((3, 3)), 1), np.pad(np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]), 1)]).astype(float)
    o = run("FillHolesd", {"l": Item(oh)}, {"keys": "l"})["l"]
    close(o.data[1], np.pad(np.ones((3, 3)), 1))
    close(o.data[0], oh[0])


def test_label_to_mask_and_indices():
    lab = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float)[None]
    o = run("FgBgToIndicesd", {"label": Item(lab)}, {"keys": "label"})
    assert o["label_fg_indices"].data.tolist() == [1, 2, 3, 5, 6, 7]
    assert o["label_bg_indices"].data.tolist() == [0, 4, 8] and o["label_bg_indices"].dtype == "int64"
    img = np.array([[5, 5, 5], [5, 0, 5], [0, 5, 5]], float)[None]
    o = run("FgBgToIndicesd", {"label": Item(lab), "image": Item(img)}, {"keys": "label", "image_key": "image",
                                                                        "output_shape": [3, 3]})
    assert o["label_bg_indices"].data.tolist() == [[0, 0], [2, 2]]
    # one-hot label: channel 0 ignored
    oh = np.stack([1 - lab[0], lab[0]])
    assert run("FgBgToIndicesd", {"l": Item(oh)}, {"keys": "l"})["l_fg_indices"].data.tolist() == [1, 2, 3, 5, 6, 7]
    m = run("LabelToMaskd", {"l": Item([[[0.0, 1.0, 2.0, 3.0]]])}, {"keys": "l", "select_labels": [1, 3]})["l"]
    close(m.data, [[[0, 1, 0, 1]]])
    assert m.dtype == "bool"
    m = run("LabelToMaskd", {"l": Item(oh)}, {"keys": "l", "select_labels": [0, 1], "merge_channels": True})["l"]
    close(m.data, np.ones((1, 3, 3)))


def test_utility():
    s = {"a": Item([[[1.7, -1.7, 0.0]]])}
    o = run("CastToTyped", s, {"keys": "a", "dtype": "$torch.int16"})["a"]
    assert o.dtype == "int16" and o.data.tolist() == [[[1.0, -1.0, 0.0]]]
    assert run("CastToTyped", s, {"keys": "a", "dtype": "bool"})["a"].data.tolist() == [[[1.0, 1.0, 0.0]]]
    assert T.parse_dtype("$np.float32") == "float32" and T.parse_dtype("torch.float") == "float32"
    assert T.parse_dtype("float") == "float64" and T.parse_dtype("torch.long") == "int64"
    # concat promotes and keeps the first affine
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    c = run("ConcatItemsd", {"x": Item(np.zeros((1, 2)), aff, "uint8"), "y": Item(np.ones((2, 2)), None, "int16")},
            {"keys": ["x", "y"], "name": "xy"})["xy"]
    assert c.data.shape == (3, 2) and c.dtype == "int16" and np.allclose(c.affine, aff)
    # CopyItemsd default-name quirk
    s2 = {"a": Item([[[1.0]]]), "b": Item([[[2.0]]])}
    o = run("CopyItemsd", s2, {"keys": ["a", "b"], "times": 2})
    assert o["a_0"].data[0, 0, 0] == 1 and o["a_1"].data[0, 0, 0] == 2
    assert o["b_0"].data[0, 0, 0] == 1 and o["b_1"].data[0, 0, 0] == 2
    o = run("CopyItemsd", s2, {"keys": ["a", "b"], "times": 1, "names": ["c", "d"]})
    assert o["d"].data[0, 0, 0] == 2
    raises(lambda: run("CopyItemsd", s2, {"keys": "a", "names": ["b"]}), KeyError)
    o = run("DeleteItemsd", {"img": 1, "img_meta": 2, "label": 3, "m": {"x": 1, "y": 2}},
            {"keys": ["meta", "m.x"], "use_re": [True, False]})
    assert o == {"img": 1, "label": 3, "m": {"y": 2}}
    aff = np.arange(16.0).reshape(4, 4)
    o = run("SqueezeDimd", {"a": Item(np.zeros((2, 1, 3, 4)), aff)}, {"keys": "a", "dim": 1})["a"]
    assert o.data.shape == (2, 3, 4) and o.affine.tolist() == aff[1:][:, 1:].tolist()
    o = run("SqueezeDimd", {"a": Item(np.zeros((1, 3, 4)))}, {"keys": "a"})["a"]
    assert o.data.shape == (3, 4) and o.affine.shape == (4, 4)
    raises(lambda: run("SqueezeDimd", {"a": Item(np.zeros((2, 3)))}, {"keys": "a"}))
    o = run("EnsureTyped", {"a": Item([[[1.5]]], dtype="float32")}, {"keys": "a"})["a"]
    assert o.dtype == "float32" and o.data[0, 0, 0] == 1.5
    assert run("ToTensord", {"a": Item([[[1.5]]])}, {"keys": "a", "dtype": "torch.float16"})["a"].dtype == "float16"
    raises(lambda: run("ToTensord", {"a": Item([[[1.5]]])}, {"keys": "b"}), KeyError)
    assert "a" in run("ToTensord", {"a": Item([[[1.5]]])}, {"keys": "b", "allow_missing_keys": True})


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for t in tests:
        t()
        print("ok", t.__name__)
    print(f"{len(tests)} tests passed")


if __name__ == "__main__":
    main()
