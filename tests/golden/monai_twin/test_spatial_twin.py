#!/usr/bin/python3
"""Self-checks of the spatial twin (plain asserts): /usr/bin/python3 tests/golden/monai_twin/test_spatial_twin.py

Cases are hand-computed corner cases plus expected values copied from MONAI's own unit tests
(tests/test_spacing.py, upstream tests/test_rand_affine.py) so the twin is pinned to real MONAI outputs.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import spatial as S  # noqa: E402


class Item:
    def __init__(self, data, affine, dtype="float32"):
        self.data = np.asarray(data, dtype=np.float64)
        self.affine = np.asarray(affine, dtype=np.float64)
        self.dtype = dtype


def T(name, sample, args, params=None):
    return S.TRANSFORMS[name](sample, args, params or {})


def close(a, b, atol=1e-5, rtol=1e-5, msg=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{msg} shape {a.shape} != {b.shape}"
    assert np.allclose(a, b, atol=atol, rtol=rtol), f"{msg}\n{a}\n!=\n{b}\nmax diff {np.abs(a - b).max()}"


def eye4():
    return np.eye(4)


def world_consistent(before, after, atol=1e-6):
    """For pure index permutations (flip/rot90/orientation/crop/pad): every output voxel value equals the input voxel
    found at the same world position (when inside the input)."""
    inv = np.linalg.inv(before.affine)
    sp = after.data.shape[1:]
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in sp], indexing="ij"), 0).reshape(len(sp), -1)
    hom = np.concatenate([idx, np.zeros((3 - len(sp), idx.shape[1])), np.ones((1, idx.shape[1]))])
    src = (inv @ after.affine @ hom)[:len(sp)]
    srci = np.round(src).astype(int)
    assert np.allclose(src, srci, atol=atol), "not an index permutation"
    inside = np.all((srci >= 0) & (srci < np.asarray(before.data.shape[1:])[:, None]), 0)
    for c in range(after.data.shape[0]):
        a = after.data[c].reshape(-1)[inside]
        b = before.data[c][tuple(srci[:, inside])]
        assert np.array_equal(a, b), "values moved inconsistently with the affine"
    return inside


# ---------------------------------------------------------------------------------------------------------------
# Spacing
# ---------------------------------------------------------------------------------------------------------------
def test_spacing_monai_cases():
    ar = np.arange(4.0).reshape((1, 2, 2)) + 1.0
    cases = [
        ({"pixdim": (1.0, 1.5), "padding_mode": "zeros", "dtype": "float64"}, ar, eye4(), {}, [[[1.0, 1.0], [3.0, 2.0]]]),
        ({"pixdim": 1.0, "padding_mode": "zeros"}, np.ones((1, 2, 1, 2)), eye4(), {}, [[[[1.0, 1.0]], [[1.0, 1.0]]]]),
        ({"pixdim": 2.0, "padding_mode": "zeros"}, ar, eye4(), {}, [[[1.0, 0.0], [0.0, 0.0]]]),
        ({"pixdim": (1.0, 0.2, 1.5), "diagonal": False, "padding_mode": "zeros", "align_corners": True},
         np.ones((1, 2, 1, 2)), [[2, 1, 0, 4], [-1, -3, 0, 5], [0, 0, 2.0, 5], [0, 0, 0, 1]], {},
         [[[[0.95527864, 0.95527864]], [[1.0, 1.0]], [[1.0, 1.0]]]]),
        ({"pixdim": (3.0, 1.0), "padding_mode": "zeros"}, np.arange(24.0).reshape((2, 3, 4)),
         np.diag([-3.0, 0.2, 1.5, 1]), {}, [[[0, 0], [4, 0], [8, 0]], [[12, 0], [16, 0], [20, 0]]]),
        ({"pixdim": (3.0, 1.0), "padding_mode": "zeros"}, np.arange(24.0).reshape((2, 3, 4)), eye4(), {},
         [[[0, 1, 2, 3], [0, 0, 0, 0]], [[12, 13, 14, 15], [0, 0, 0, 0]]]),
        ({"pixdim": (1.0, 1.0), "align_corners": True}, np.arange(24.0).reshape((2, 3, 4)), eye4(), {},
         np.arange(24.0).reshape((2, 3, 4))),
        ({"pixdim": (4.0, 5.0, 6.0)}, np.arange(24.0).reshape((1, 2, 3, 4)),
         [[-4, 0, 0, 4], [0, 5, 0, -5], [0, 0, 6, -6], [0, 0, 0, 1]], {}, np.arange(24.0).reshape((1, 2, 3, 4))),
        ({"pixdim": (4.0, 5.0, 6.0), "diagonal": True}, np.arange(24.0).reshape((1, 2, 3, 4)),
         [[-4, 0, 0, 4], [0, 5, 0, 0], [0, 0, 6, 0], [0, 0, 0, 1]], {},
         [[[[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]], [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]]]),
        ({"pixdim": (4.0, 5.0, 6.0), "padding_mode": "border", "diagonal": True, "mode": "nearest"},
         np.arange(24.0).reshape((1, 2, 3, 4)), [[-4, 0, 0, -4], [0, 5, 0, 0], [0, 0, 6, 0], [0, 0, 0, 1]], {},
         [[[[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]], [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]]]),
        ({"pixdim": (1.9, 4.0), "padding_mode": "zeros", "diagonal": True, "mode": "nearest"},
         np.arange(24.0).reshape((1, 4, 6)), [[-4, 0, 0, -4], [0, 5, 0, 0], [0, 0, 6, 0], [0, 0, 0, 1]], {},
         [[[18.0, 19.0, 20.0, 20.0, 21.0, 22.0, 23.0], [18.0, 19.0, 20.0, 20.0, 21.0, 22.0, 23.0],
           [12.0, 13.0, 14.0, 14.0, 15.0, 16.0, 17.0], [12.0, 13.0, 14.0, 14.0, 15.0, 16.0, 17.0],
           [6.0, 7.0, 8.0, 8.0, 9.0, 10.0, 11.0], [6.0, 7.0, 8.0, 8.0, 9.0, 10.0, 11.0],
           [0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0]]]),
        ({"pixdim": (5.0, 3.0), "padding_mode": "border", "diagonal": True, "dtype": "float32", "mode": "bilinear"},
         np.arange(24.0).reshape((1, 4, 6)), [[-4, 0, 0, 0], [0, 5, 0, 0], [0, 0, 6, 0], [0, 0, 0, 1]], {},
         [[[18.0, 18.6, 19.2, 19.8, 20.400002, 21.0, 21.6, 22.2, 22.8],
           [10.5, 11.1, 11.700001, 12.299999, 12.900001, 13.5, 14.1, 14.700001, 15.3],
           [3.0, 3.6000001, 4.2000003, 4.8, 5.4000006, 6.0, 6.6000004, 7.200001, 7.8]]]),
        ({"pixdim": (5.0, 3.0), "padding_mode": "zeros", "diagonal": True, "dtype": "float32", "mode": "bilinear"},
         np.arange(24.0).reshape((1, 4, 6)), [[-4, 0, 0, 0], [0, 5, 0, 0], [0, 0, 6, 0], [0, 0, 0, 1]], {},
         [[[18.0, 18.6, 19.2, 19.8, 20.4, 21.0, 21.6, 22.2, 22.8],
           [10.5, 11.1, 11.7, 12.3, 12.9, 13.5, 14.1, 14.7, 15.3],
           [3.0, 3.6, 4.2, 4.8, 5.4, 6.0, 6.6, 7.2, 7.8]]]),
        ({"pixdim": [-1, -1, 0.5], "padding_mode": "zeros"}, np.ones((1, 2, 1, 2)), eye4(), {},
         np.ones((1, 2, 1, 3))),
    ]
    for i, (args, data, aff, _, expected) in enumerate(cases):
        a = dict(args, keys=["img"])
        out = T("Spacingd", {"img": Item(data, aff)}, a)["img"]
        close(out.data, expected, atol=1e-4, rtol=1e-4, msg=f"spacing case {i}")
        assert out.dtype == "float32"
        sr = out.data.ndim - 1
        pix = list(S.ensure_tuple(args["pixdim"]))
        pix = (pix + [pix[-1]] * sr)[:sr]
        norm = S.affine_to_spacing(out.affine, sr)
        close([p if p > 0 else n for p, n in zip(pix, norm)], norm, msg=f"spacing case {i} pixdim")
    # oblique affine + scale_extent (shape only, from MONAI's test)
    aff = [[0.41, 0.005, 0.008, -79.7], [-0.0049, 0.592, 0.0664, -57.4], [-0.0073, -0.0972, 0.404, -32.1],
           [0, 0, 0, 1]]
    shape, _ = S.compute_shape_offset([368, 336, 368], np.asarray(aff),
                                      S.zoom_affine(np.asarray(aff), [0.5] * 3, diagonal=False), scale_extent=True)
    assert list(shape) == [302, 403, 301], shape


def test_spacing_lps_to_1mm():
    """96x96x40 LPS 1.6x1.6x4 -> 1 mm: corner-aligned grid, shape round(95*1.6+1) etc., trilinear values."""
    rng = np.random.default_rng(1)
    a = np.diag([-1.6, -1.6, 4.0, 1.0])
    a[:3, 3] = [10, 20, -30]
    data = rng.random((1, 96, 96, 40)).astype(np.float32).astype(np.float64)
    out = T("Spacingd", {"image": Item(data, a)}, {"keys": ["image"], "pixdim": [1, 1, 1]})["image"]
    assert out.data.shape == (1, 153, 153, 157), out.data.shape
    exp = np.diag([-1.0, -1.0, 1.0, 1.0])
    exp[:3, 3] = [10, 20, -30]
    close(out.affine, exp, atol=1e-12)
    # independent trilinear interpolation at a few voxels: input index = (j0/1.6, j1/1.6, j2/4)
    for j in [(0, 0, 0), (8, 16, 4), (37, 101, 155), (152, 152, 156), (77, 3, 18)]:
        x = np.array(j) / np.array([1.6, 1.6, 4.0])
        x = np.minimum(x, np.array(data.shape[1:]) - 1)
        i0 = np.floor(x).astype(int)
        f = x - i0
        v = 0.0
        for corner in np.ndindex(2, 2, 2):
            ii = np.minimum(i0 + corner, np.array(data.shape[1:]) - 1)
            w = np.prod([fk if c else 1 - fk for fk, c in zip(f, corner)])
            v += w * data[0][tuple(ii)]
        assert abs(out.data[0][j] - np.float32(v)) < 1e-5, (j, out.data[0][j], v)
    # nearest on labels: every output value is an input value
    lab = np.floor(data * 4)
    o2 = T("Spacingd", {"label": Item(lab, a, "uint8")}, {"keys": ["label"], "pixdim": [1, 1, 1], "mode": "nearest"})
    assert set(np.unique(o2["label"].data)) <= set(np.unique(lab)) and o2["label"].dtype == "float32"


def test_spacing_tolerance_and_padding_rule():
    a = np.diag([1.0004, 2.0, 3.0, 1.0])
    it = Item(np.random.default_rng(0).random((1, 5, 6, 7)), a, "int16")
    out = T("Spacingd", {"x": it}, {"keys": "x", "pixdim": [1.0, 2.0, 3.0]})["x"]
    assert out.data.shape == (1, 5, 6, 7) and out.dtype == "float32"
    close(out.affine, a)  # within 1e-3 of the target: nothing resampled, affine untouched
    # short pixdim is padded with its LAST value (not 1.0)
    out = T("Spacingd", {"x": Item(np.ones((1, 4, 4, 4)), np.diag([1.0, 1, 1, 1]))}, {"keys": "x", "pixdim": [2.0]})["x"]
    close(S.affine_to_spacing(out.affine, 3), [2, 2, 2])
    assert out.data.shape == (1, 2, 2, 2)  # round(3/2 + 1) = round(2.5) = 2 (half to even)


def test_spacing_2d_with_4x4_affine():
    a = np.eye(4)
    a[:2, 3] = [5, 6]
    out = T("Spacingd", {"x": Item(np.arange(20.0).reshape(1, 4, 5), a)}, {"keys": "x", "pixdim": [0.5, 0.5]})["x"]
    assert out.data.shape == (1, 7, 9)
    exp = np.diag([0.5, 0.5, 1, 1])
    exp[:2, 3] = [5, 6]
    close(out.affine, exp)
    close(out.data[0, ::2, ::2], np.arange(20.0).reshape(4, 5))


# ---------------------------------------------------------------------------------------------------------------
# Orientation
# ---------------------------------------------------------------------------------------------------------------
def test_orientation_lps_to_ras():
    a = np.diag([-1.6, -1.6, 4.0, 1.0])
    a[:3, 3] = [10, 20, -30]
    data = np.arange(96 * 96 * 40, dtype=np.float64).reshape(1, 96, 96, 40)
    it = Item(data, a, "int16")
    out = T("Orientationd", {"image": it}, {"keys": ["image"], "axcodes": "RAS"})["image"]
    exp = np.diag([1.6, 1.6, 4.0, 1.0])
    exp[:3, 3] = [-142.0, -132.0, -30.0]
    close(out.affine, exp)
    assert np.array_equal(out.data, data[:, ::-1, ::-1, :]) and out.dtype == "int16"
    assert S.aff2axcodes(out.affine) == "RAS"
    world_consistent(it, out)
    for codes in ("LPS", "PLI", "SAR", "IPL"):
        o = T("Orientationd", {"image": it}, {"keys": "image", "axcodes": codes})["image"]
        assert S.aff2axcodes(o.affine) == codes, (codes, S.aff2axcodes(o.affine))
        assert world_consistent(it, o).all()


def test_orientation_matches_nibabel():
    try:
        import nibabel.orientations as no
    except ImportError:
        return
    rng = np.random.default_rng(3)
    for _ in range(50):
        q, _r = np.linalg.qr(rng.normal(size=(3, 3)))
        aff = np.eye(4)
        aff[:3, :3] = q @ np.diag(rng.uniform(0.5, 3, 3))
        aff[:3, 3] = rng.normal(size=3)
        close(S.io_orientation(aff), no.io_orientation(aff))
        shape = (5, 6, 7)
        for codes in ("RAS", "LPI", "PLI"):
            t1 = S.ornt_transform(S.io_orientation(aff), S.axcodes2ornt(codes))
            t2 = no.ornt_transform(no.io_orientation(aff), no.axcodes2ornt(codes))
            close(t1, t2)
            close(S.inv_ornt_aff(t1, shape), no.inv_ornt_aff(t2, shape))
        assert S.aff2axcodes(aff) == "".join(no.aff2axcodes(aff))


# ---------------------------------------------------------------------------------------------------------------
# crop / pad
# ---------------------------------------------------------------------------------------------------------------
def test_crop_foreground_margins():
    img = np.zeros((1, 10, 10))
    img[0, 1:3, 5:9] = 1
    s = {"img": Item(img, eye4(), "uint8")}
    out = T("CropForegroundd", s, {"keys": "img", "source_key": "img", "margin": 2})
    assert out["foreground_start_coord"] == [0, 3] and out["foreground_end_coord"] == [5, 10]
    assert out["img"].data.shape == (1, 5, 7) and out["img"].dtype == "uint8"
    close(out["img"].affine[:3, 3], [0, 3, 0])
    # allow_smaller=False: the box leaves the image -> crop then constant pad
    out = T("CropForegroundd", s, {"keys": "img", "source_key": "img", "margin": 2, "allow_smaller": False})
    assert out["foreground_start_coord"] == [-1, 3] and out["foreground_end_coord"] == [5, 11]
    o = out["img"]
    assert o.data.shape == (1, 6, 8)
    close(o.affine[:3, 3], [-1, 3, 0])
    assert o.data[0, 0].sum() == 0 and o.data[0, :, -1].sum() == 0
    world_consistent(s["img"], o)
    # k_divisible: box [1,3)x[5,9) sizes (2, 4) -> (4, 6); start -= floor((new - old) / 2)
    out = T("CropForegroundd", s, {"keys": "img", "source_key": "img", "k_divisible": [4, 3]})
    assert out["foreground_start_coord"] == [0, 4] and out["foreground_end_coord"] == [4, 10]
    assert out["img"].data.shape == (1, 4, 6)
    # threshold select_fn and empty foreground
    out = T("CropForegroundd", s, {"keys": "img", "source_key": "img", "select_fn": 5})
    assert out["img"].data.shape == (1, 0, 0) and out["foreground_end_coord"] == [0, 0]


def test_pads_and_center_crop():
    img = Item(np.arange(30.0).reshape(1, 5, 6), eye4(), "float32")
    o = T("SpatialPadd", {"x": img}, {"keys": "x", "spatial_size": [8, -1]})["x"]
    assert o.data.shape == (1, 8, 6)
    close(o.affine[:3, 3], [-1, 0, 0])  # width 3 -> (1, 2)
    world_consistent(img, o)
    o = T("SpatialPadd", {"x": img}, {"keys": "x", "spatial_size": [8, 9], "method": "end", "mode": "edge"})["x"]
    assert o.data.shape == (1, 8, 9) and o.data[0, 7, 8] == 29
    o = T("DivisiblePadd", {"x": img}, {"keys": "x", "k": 4, "mode": "reflect"})["x"]
    assert o.data.shape == (1, 8, 8)
    close(o.data[0, 0, 1:7], img.data[0, 1])  # reflect without repeating the edge, before = 1
    o = T("CenterSpatialCropd", {"x": img}, {"keys": "x", "roi_size": [2, -1]})["x"]
    assert o.data.shape == (1, 2, 6)
    close(o.affine[:3, 3], [1, 0, 0])  # centre 2, start 2 - 1 = 1
    o = T("CenterSpatialCropd", {"x": img}, {"keys": "x", "roi_size": [3, 9]})["x"]
    assert o.data.shape == (1, 3, 6)
    close(o.affine[:3, 3], [1, 0, 0])


def test_correct_crop_centers():
    cc = S.correct_crop_centers
    assert cc([0, 0], [5, 4], [10, 10]) == (2, 2)
    assert cc([9, 9], [5, 4], [10, 10]) == (7, 8)
    assert cc([9, 9], [10, 9], [10, 10]) == (5, 5)
    assert cc([0, 0], [10, 9], [10, 10]) == (5, 4)
    assert cc([3, 3], [-1, 1], [10, 10]) == (5, 3)
    assert cc([0, 9], [12, 12], [10, 10], allow_smaller=True) == (5, 5)
    try:
        cc([0, 0], [12, 12], [10, 10])
        raise AssertionError("expected ValueError")
    except ValueError:
        pass
    # every corrected center gives a crop fully inside the image
    for n in range(1, 12):
        for s in range(1, n + 1):
            for c in range(n):
                (k,) = cc([c], [s], [n])
                st = k - s // 2
                assert 0 <= st and st + s <= n, (n, s, c, k)


def test_pos_neg_candidates():
    lab = np.array([[[0, 1, 1], [1, 0, 1], [1, 1, 0]]], dtype=float)
    fg, bg = S.pos_neg_candidates(lab)
    assert fg.tolist() == [1, 2, 3, 5, 6, 7] and bg.tolist() == [0, 4, 8]
    img = np.array([[[0, 1, 1], [1, 0, 1], [1, 1, 3]]], dtype=float)
    fg, bg = S.pos_neg_candidates(lab, img, 0.5)
    assert bg.tolist() == [8]
    onehot = np.stack([1 - lab[0], lab[0]])  # channel 0 (background) is dropped
    assert S.pos_neg_candidates(onehot)[0].tolist() == [1, 2, 3, 5, 6, 7]


def test_rand_crop_by_pos_neg_label():
    lab = np.zeros((1, 10, 10))
    lab[0, 0, 0] = 1
    img = Item(np.arange(100.0).reshape(1, 10, 10), eye4())
    s = {"image": img, "label": Item(lab, eye4(), "uint8"), "meta": 7}
    out = T("RandCropByPosNegLabeld", s, {"keys": ["image", "label"], "label_key": "label", "spatial_size": [4, 5],
                                          "num_samples": 2}, {"centers": [[0, 0], [9, 9]], "report_centers": True})
    assert len(out) == 2 and out[0]["meta"] == 7
    assert out[0]["crop_center"] == [2, 2] and out[1]["crop_center"] == [8, 7]
    assert out[0]["image"].data.shape == (1, 4, 5) and out[0]["label"].data[0, 0, 0] == 1
    close(out[1]["image"].affine[:3, 3], [6, 5, 0])
    world_consistent(img, out[1]["image"])


# ---------------------------------------------------------------------------------------------------------------
# flips, rot90, resize, zoom, rotate
# ---------------------------------------------------------------------------------------------------------------
def test_flip_rot90():
    rng = np.random.default_rng(5)
    a = np.diag([-1.6, -1.6, 4.0, 1.0])
    a[:3, 3] = [10, 20, -30]
    it = Item(rng.integers(0, 9, (2, 5, 6, 7)), a, "int16")
    for ax in (None, 0, [1, 2], -1):
        o = T("Flipd", {"x": it}, {"keys": "x", "spatial_axis": ax})["x"]
        assert o.dtype == "int16" and world_consistent(it, o).all()
    o = T("RandFlipd", {"x": it}, {"keys": "x", "spatial_axis": 1}, {"flip": False})["x"]
    assert np.array_equal(o.data, it.data)
    for k in range(4):
        for axes in ((0, 1), (1, 2), (0, 2), (2, 0), (-1, 0)):
            o = T("Rotate90d", {"x": it}, {"keys": "x", "k": k, "spatial_axes": axes})["x"]
            assert np.array_equal(o.data, np.rot90(it.data, k, axes=tuple(a_ % 3 + 1 for a_ in axes)))
            assert world_consistent(it, o).all()
    o = T("RandRotate90d", {"x": it}, {"keys": "x", "max_k": 3}, {"k": 3})["x"]
    assert np.array_equal(o.data, np.rot90(it.data, 3, axes=(1, 2)))


def test_resize():
    it = Item(np.arange(64.0).reshape(1, 8, 8), eye4(), "int16")
    o = T("Resized", {"x": it}, {"keys": "x", "spatial_size": [4, -1]})["x"]
    assert o.data.shape == (1, 4, 8) and o.dtype == "float32"
    close(o.data[0], (it.data[0, ::2] + it.data[0, 1::2]) / 2)  # area = block mean
    exp = np.diag([2.0, 1.0, 1.0, 1.0])
    exp[0, 3] = 0.5  # extent preserved: scale 2, shift (2-1)/2
    close(o.affine, exp)
    o = T("Resized", {"x": it}, {"keys": "x", "spatial_size": 5, "size_mode": "longest", "mode": "nearest"})["x"]
    assert o.data.shape == (1, 5, 5)  # round(8 * 5/8)
    close(o.data[0, :, 0], it.data[0, [0, 1, 3, 4, 6], 0])  # floor(i * 1.6)
    o = T("Resized", {"x": Item(np.ones((1, 3, 4, 5)), eye4())},
          {"keys": "x", "spatial_size": [6, 8, 10], "mode": "bilinear"})["x"]  # bilinear -> trilinear in 3D
    close(o.data, np.ones((1, 6, 8, 10)))
    o = T("Resized", {"x": it}, {"keys": "x", "spatial_size": [8, 8]})["x"]
    assert o.dtype == "float32" and np.array_equal(o.data, it.data)


def test_zoom():
    it = Item(np.arange(100.0).reshape(1, 10, 10), eye4(), "float32")
    o = T("Zoomd", {"x": it}, {"keys": "x", "zoom": 1.5})["x"]
    assert o.data.shape == (1, 10, 10) and o.dtype == "float32"
    o2 = T("Zoomd", {"x": it}, {"keys": "x", "zoom": 1.5, "keep_size": False})["x"]
    assert o2.data.shape == (1, 15, 15)
    close(o.data, o2.data[:, 2:12, 2:12])  # centre crop start 7 - 5 = 2
    close(o.affine, o2.affine @ S.to_affine_nd(3, S.translate(2, [2, 2])))
    o = T("Zoomd", {"x": it}, {"keys": "x", "zoom": [0.5, 0.75], "mode": "nearest"})["x"]
    assert o.data.shape == (1, 10, 10)
    small = T("Zoomd", {"x": it}, {"keys": "x", "zoom": [0.5, 0.75], "mode": "nearest", "keep_size": False})["x"]
    assert small.data.shape == (1, 5, 7)
    close(o.data[0, 2:7, 1:8], small.data[0])  # pad (2, 3) and (1, 2) with edge
    close(o.data[0, 0, 1:8], small.data[0, 0])
    o = T("RandZoomd", {"x": it}, {"keys": "x"}, {"zoom": [1.5]})["x"]
    close(o.data, T("Zoomd", {"x": it}, {"keys": "x", "zoom": 1.5})["x"].data)


def test_rotate():
    it = Item(np.random.default_rng(2).random((1, 7, 7)), eye4())
    o = T("Rotated", {"x": it}, {"keys": "x", "angle": np.pi / 2})["x"]
    close(o.data, np.rot90(it.data, -1, axes=(1, 2)), atol=1e-5)  # MONAI's +90deg = np.rot90(k=-1)
    o = T("RandRotated", {"x": it}, {"keys": "x", "range_x": 1.0, "keep_size": False}, {"angles": np.pi / 4})["x"]
    assert o.data.shape == (1, 10, 10)  # int(7*sqrt(2) + 0.5)
    o = T("RandRotated", {"x": Item(it.data, eye4(), "int16")}, {"keys": "x"}, {"do": False})["x"]
    assert o.dtype == "float32"


# ---------------------------------------------------------------------------------------------------------------
# affine family
# ---------------------------------------------------------------------------------------------------------------
def _monai_rand_affine_draws(seed, prob, rotate_range, shear_range, translate_range, scale_range):
    r_t = np.random.RandomState(seed)  # RandAffine's own state
    r_g = np.random.RandomState(seed)  # RandAffineGrid's state (seeded with the same seed)
    do = r_t.rand() < prob

    def draw(rng, add=0.0):
        return [r_g.uniform(-f, f) + add for f in rng] if rng else []

    def all_draws():
        return {"rotate": draw(rotate_range), "shear": draw(shear_range), "translate": draw(translate_range),
                "scale": draw(scale_range, 1.0)}
    all_draws()  # RandAffine.randomize() draws once, then RandAffineGrid.__call__(randomize=True) draws again:
    return do, all_draws()  # the grid uses the SECOND draw


def test_rand_affine_monai_cases():
    do, p = _monai_rand_affine_draws(123, 0.9, (np.pi / 2,), [1, 2], [2, 1], [0.1, 0.2])
    assert do
    it = Item(np.arange(64.0).reshape(1, 8, 8), eye4())
    o = T("RandAffined", {"img": it}, {"keys": "img", "spatial_size": [3, 3], "prob": 0.9}, p)["img"]
    close(o.data, [[[18.7362, 15.5820, 12.4278], [27.3988, 24.2446, 21.0904], [36.0614, 32.9072, 29.7530]]],
          atol=1e-4, rtol=1e-4, msg="RandAffine 2D")
    do, p = _monai_rand_affine_draws(123, 0.9, (np.pi / 2,), [1, 2], [2, 1], None)
    o = T("RandAffined", {"img": Item(np.ones((1, 3, 3, 3)), eye4())},
          {"keys": "img", "spatial_size": [2, 2, 2], "padding_mode": "zeros"}, p)["img"]
    close(o.data, [[[[0.3658, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 0.9333]]]], atol=1e-4, rtol=1e-4,
          msg="RandAffine 3D")
    # spatial_size change without transform = centre crop through the sampler
    o = T("RandAffined", {"img": Item(np.arange(27.0).reshape((3, 3, 3)), eye4())},
          {"keys": "img", "spatial_size": [2, 2]}, {"do": False})["img"]
    close(o.data, [[[2.0, 3.0], [5.0, 6.0]], [[11.0, 12.0], [14.0, 15.0]], [[20.0, 21.0], [23.0, 24.0]]])


def test_affine_translate_and_meta():
    rng = np.random.default_rng(7)
    it = Item(rng.random((1, 6, 7, 8)), np.diag([2.0, 2.0, 2.0, 1.0]))
    o = T("Affined", {"x": it}, {"keys": "x", "translate_params": [2, 0, -1], "padding_mode": "zeros"})["x"]
    close(o.data[0, :4, :, 1:], it.data[0, 2:, :, :-1].astype(np.float32), atol=1e-6)
    exp = np.diag([2.0, 2.0, 2.0, 1.0])
    exp[:3, 3] = [4, 0, -2]
    close(o.affine, exp)
    o = T("RandAffined", {"x": it}, {"keys": "x"}, {"rotate": [0.3, 0.1, -0.2], "scale": [1.1, 0.9, 1.0]})["x"]
    assert o.data.shape == it.data.shape and o.dtype == "float32"
    o = T("RandAffined", {"x": it}, {"keys": "x"}, {"do": False})["x"]
    close(o.data, it.data.astype(np.float32))


def test_rand_3d_elastic_identity():
    it = Item(np.random.default_rng(0).random((1, 6, 7, 8)), eye4())
    off = np.zeros((3, 6, 7, 8)).tolist()
    o = T("Rand3DElasticd", {"x": it}, {"keys": "x", "sigma_range": [1, 2], "magnitude_range": [1, 2]},
          {"rand_offset": off, "sigma": 1.5, "magnitude": 1.0})["x"]
    close(o.data, it.data, atol=1e-6)
    k = S.gaussian_1d(1.0, 3.0).numpy()
    assert len(k) == 7 and abs(k.sum() - 1) < 3e-3 and k.sum() < 1  # erf kernel, not renormalised


def test_rand_3d_elastic_monai_cases():
    """Seeded cases from MONAI tests/test_rand_3d_elasticd.py; draws reproduced with RandomState(123): the elastic
    transform's state gives rand() (prob), uniform(-1, 1, [3, *out]) as float32, magnitude, sigma; the affine grid's
    own state draws the rotate params twice (RandAffineGrid.__call__ re-randomizes) and the second draw is used."""
    def draws(rot_range):
        re, rg = np.random.RandomState(123), np.random.RandomState(123)
        re.rand()
        off = re.uniform(-1, 1, [3, 2, 2, 2]).astype(np.float32)
        mag, sig = re.uniform(0.3, 0.3), re.uniform(1.0, 2.0)
        [rg.uniform(-f, f) for f in rot_range]
        return {"rand_offset": off.tolist(), "sigma": sig, "magnitude": mag,
                "rotate": [rg.uniform(-f, f) for f in rot_range]}
    img = Item(np.arange(27.0).reshape(1, 3, 3, 3), eye4())
    args = {"keys": ["img", "seg"], "spatial_size": [2, 2, 2], "sigma_range": [1, 2], "magnitude_range": [.3, .3]}
    o = T("Rand3DElasticd", {"img": img, "seg": img}, args, draws([]))
    close(o["img"].data, [[[[6.4939356, 7.50289], [9.518351, 10.522849]], [[15.512375, 16.523542],
                                                                         [18.531467, 19.53646]]]], atol=1e-5)
    o = T("Rand3DElasticd", {"img": img, "seg": img}, dict(args, mode=["bilinear", "nearest"]), draws([1, 1, 1]))
    close(o["img"].data, [[[[5.0069294, 9.463932], [9.287769, 13.739735]], [[12.319424, 16.777205],
                                                                          [16.594296, 21.045748]]]], atol=1e-5)
    close(o["seg"].data, [[[[4.0, 14.0], [7.0, 14.0]], [[9.0, 19.0], [12.0, 22.0]]]])
    close(o["img"].affine, eye4())  # affine not updated


# ---------------------------------------------------------------------------------------------------------------
# Invertd
# ---------------------------------------------------------------------------------------------------------------
def test_invert_roundtrips():
    rng = np.random.default_rng(11)
    a = np.diag([-2.0, -2.0, 3.0, 1.0])
    a[:3, 3] = [5, 6, 7]
    lab = np.zeros((1, 12, 10, 8))
    lab[0, 3:9, 2:7, 2:6] = rng.integers(1, 4, (6, 5, 4))
    orig = {"image": Item(lab, a, "uint8")}
    chain = [
        ["Orientationd", {"keys": "image", "axcodes": "RAS"}, {}],
        ["Spacingd", {"keys": "image", "pixdim": [1.0, 1.0, 1.5], "mode": "nearest"}, {}],
        ["CropForegroundd", {"keys": "image", "source_key": "image", "margin": 3, "allow_smaller": False}, {}],
        ["SpatialPadd", {"keys": "image", "spatial_size": [32, 32, 32]}, {}],
        ["RandFlipd", {"keys": "image", "spatial_axis": 0}, {"flip": True}],
        ["RandRotate90d", {"keys": "image"}, {"k": 1}],
        ["DivisiblePadd", {"keys": "image", "k": 16}, {}],
    ]
    s = dict(orig)
    for name, ar, pr in chain:
        s = T(name, s, ar, pr)
    pred = Item(s["image"].data.copy(), np.eye(4), "float32")
    inv = T("Invertd", {"image": orig["image"], "pred": pred}, {"keys": "pred", "orig_keys": "image"},
            {"chain": chain})["pred"]
    assert inv.data.shape == lab.shape, inv.data.shape
    close(inv.data, lab)
    close(inv.affine, a, atol=1e-6)
    chain2 = [["Resized", {"keys": "image", "spatial_size": [24, 20, 16]}, {}],
              ["Zoomd", {"keys": "image", "zoom": 0.75}, {}], ["CenterSpatialCropd", {"keys": "image",
                                                                                     "roi_size": [20, 18, 16]}, {}]]
    s = dict(orig)
    for name, ar, pr in chain2:
        s = T(name, s, ar, pr)
    inv = T("Invertd", {"image": orig["image"], "pred": s["image"]}, {"keys": "pred"},
            {"chain": chain2, "orig_key": "image"})["pred"]
    assert inv.data.shape == lab.shape
    close(inv.affine, a, atol=1e-6)


def test_run_py_protocol():
    """End-to-end through run.py (skipped when intensity.py is not importable yet)."""
    try:
        import intensity  # noqa: F401
    except Exception:
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = np.arange(24.0).reshape(1, 2, 3, 4)
        data.astype("<f8").tofile(os.path.join(tmp, "img.f64"))
        req = {"transform": "Flipd", "args": {"keys": ["image"], "spatial_axis": 0}, "params": {},
               "inputs": {"image": {"raw": os.path.join(tmp, "img.f64"), "shape": [1, 2, 3, 4],
                                    "affine": np.eye(4).tolist(), "dtype": "int16"}},
               "output_dir": os.path.join(tmp, "out")}
        with open(os.path.join(tmp, "req.json"), "w") as f:
            json.dump(req, f)
        res = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), os.path.join(tmp, "req.json")],
                             capture_output=True, text=True, check=True)
        desc = json.loads(res.stdout)["outputs"][0]["image"]
        assert desc["shape"] == [1, 2, 3, 4] and desc["dtype"] == "int16"
        got = np.fromfile(os.path.join(tmp, "out", "0_image.f64"), dtype="<f8").reshape(desc["shape"])
        assert np.array_equal(got, data[:, ::-1])


if __name__ == "__main__":
    names = [n for n in sorted(globals()) if n.startswith("test_")]
    failed = 0
    for n in names:
        try:
            globals()[n]()
            print(f"ok   {n}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {n}: {e}")
    print(f"{len(names) - failed}/{len(names)} passed")
    sys.exit(1 if failed else 0)
