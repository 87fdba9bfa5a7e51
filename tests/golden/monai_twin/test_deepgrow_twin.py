#!/usr/bin/python3
"""Self-checks of the deepgrow twin (plain asserts): /usr/bin/python3 tests/golden/monai_twin/test_deepgrow_twin.py

Hand-computed corner cases plus the expected values of MONAI's own tests/test_deepgrow_transforms.py (MONAI's
random draws there are reproduced with numpy's RandomState, which is what MONAI's ``self.R`` is).
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import deepgrow as DG  # noqa: E402


class Item:
    def __init__(self, data, affine=None, dtype="float32"):
        self.data = np.asarray(data, dtype=np.float64)
        self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        self.dtype = dtype


def T(name, sample, args, params=None):
    return DG.TRANSFORMS[name](sample, args, params or {})


def close(a, b, atol=1e-6, rtol=1e-5, msg=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{msg} shape {a.shape} != {b.shape}"
    assert np.allclose(a, b, atol=atol, rtol=rtol), f"{msg}\n{a}\n!=\n{b}"


def raises(exc, fn, *a, **k):
    try:
        fn(*a, **k)
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


# MONAI test data (tests/test_deepgrow_transforms.py)
IMAGE = np.array([[[[1, 0, 2, 0, 1], [0, 1, 2, 1, 0], [2, 2, 3, 2, 2], [0, 1, 2, 1, 0], [1, 0, 2, 0, 1]]]])
LABEL = np.array([[[[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]]])
IMAGE2 = np.array([[[[1, 2, 3, 2, 1], [1, 1, 3, 2, 1], [0, 0, 0, 0, 0], [1, 1, 1, 2, 1], [0, 2, 2, 2, 1]],
                    [[1, 0, 2, 0, 1], [0, 1, 2, 1, 0], [2, 2, 3, 2, 2], [0, 1, 2, 1, 0], [1, 0, 2, 0, 1]]]])
LABEL2 = np.array([[[[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]],
                    [[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]]])


def flat(shape, *idx):
    return int(np.ravel_multi_index(idx, shape))


# ---------------------------------------------------------------------------------------------------------------
# FindAllValidSlicesd
# ---------------------------------------------------------------------------------------------------------------
def test_find_all_valid_slices():
    assert T("FindAllValidSlicesd", {"label": Item(LABEL)}, {})["sids"] == [0]
    assert T("FindAllValidSlicesd", {"label": Item(LABEL2)}, {"label": "label", "sids": "sids"})["sids"] == [0, 1]
    lab = np.zeros((1, 5, 3, 3))
    lab[0, 1, 0, 0] = 1
    lab[0, 3, 2, 2] = 2
    lab[0, 4, 0, 0], lab[0, 4, 1, 1] = 1, -1  # sum == 0 -> not valid (MONAI tests the sum, not any())
    out = T("FindAllValidSlicesd", {"label": Item(lab)}, {"sids": "valid"})
    assert out["valid"] == [1, 3] and all(isinstance(v, int) for v in out["valid"])
    # no valid slice: key not written (existing value kept)
    out = T("FindAllValidSlicesd", {"label": Item(np.zeros((1, 2, 2, 2))), "sids": [7]}, {})
    assert out["sids"] == [7]
    assert "sids" not in T("FindAllValidSlicesd", {"label": Item(np.zeros((1, 2, 2, 2)))}, {})
    raises(ValueError, T, "FindAllValidSlicesd", {"label": Item(np.ones((2, 2, 2, 2)))}, {})
    raises(ValueError, T, "FindAllValidSlicesd", {"label": Item(np.ones((1, 2, 2)))}, {})


# ---------------------------------------------------------------------------------------------------------------
# AddInitialSeedPointd
# ---------------------------------------------------------------------------------------------------------------
def test_add_initial_seed_point_monai_case():
    # MONAI: AddInitialSeedPointd(label, guidance, sids).set_random_state(0) on DATA_1 (no sids -> 3-D path).
    sample = {"image": Item(IMAGE), "label": Item(LABEL)}
    probe = T("AddInitialSeedPointd", sample, {}, {"seeds": [flat((1, 1, 5, 5), 0, 0, 1, 1)], "with_probability": True})
    pmap = probe["probability_0"].data
    assert pmap.shape == (1, 1, 5, 5)
    cand = np.flatnonzero(pmap.ravel() > 0)
    assert cand.tolist() == [6, 8, 12, 16, 18]  # five isolated voxels, all with cdt distance 1 -> uniform
    close(pmap.ravel()[cand], [0.2] * 5)
    seed = np.random.RandomState(0).choice(cand, size=1, p=pmap.ravel()[cand])[0]
    out = T("AddInitialSeedPointd", sample, {"label": "label", "guidance": "guidance", "sids": "sids"},
            {"seeds": [int(seed)]})
    assert out["guidance"] == "[[[1, 0, 2, 2]], [[-1, -1, -1, -1]]]", out["guidance"]


def _two_blob_label():
    """(1, 3, 5, 6) label. Slice 1 holds A = 3x3 block rows 1-3, cols 0-2 and B = {(0,5), (1,4)} (diagonal, so one
    8-connected component). B's first voxel (0,5) comes before A's (1,0) in raster order -> B is region 0."""
    lab = np.zeros((1, 3, 5, 6))
    lab[0, 1, 1:4, 0:3] = 1
    lab[0, 1, 0, 5] = 1
    lab[0, 1, 1, 4] = 0.7  # > 0.5 counts
    lab[0, 1, 4, 5] = 0.5  # == 0.5 does not count
    lab[0, 2, 2, 2] = 1
    return lab


def test_add_initial_seed_point_slice_regions():
    lab = _two_blob_label()
    sample = {"label": Item(lab), "sids": [1, 2]}
    shp = (1, 5, 6)
    params = {"sid": 1, "seeds": [flat(shp, 0, 0, 5), flat(shp, 0, 2, 1)], "with_probability": True}
    out = T("AddInitialSeedPointd", sample, {"connected_regions": 3}, params)
    g = json.loads(out["guidance"])
    # region 0 (B): distance 1; region 1 (A): (2,1) has chessboard distance 2 (nearest background 2 away);
    # region 2: empty -> default
    assert g == [[[1, 1, 0, 5], [2, 1, 2, 1], [-1, -1, -1, -1]], [[-1, -1, -1, -1]] * 3], g
    # A's distances: (2,0) and (2,1) are 2 (the array border is not background), the other 7 voxels 1
    pa = out["probability_1"].data
    assert pa.shape == shp
    e1, e2 = math.e - 1, math.e ** 2 - 1
    tot = 2 * e2 + 7 * e1
    close(pa[0, 2, 0], e2 / tot)
    close(pa[0, 2, 1], e2 / tot)
    close(pa[0, 1, 0], e1 / tot)
    assert pa[0, 0, 0] == 0 and abs(pa.sum() - 1) < 1e-12
    pb = out["probability_0"].data
    close(pb[0, 0, 5], 0.5)
    close(pb[0, 1, 4], 0.5)
    assert "probability_2" not in out
    # a zero-probability seed is refused
    raises(ValueError, T, "AddInitialSeedPointd", sample, {"connected_regions": 3},
           {"sid": 1, "seeds": [flat(shp, 0, 0, 0), flat(shp, 0, 2, 1)]})
    # missing seed for a non-empty region
    raises(ValueError, T, "AddInitialSeedPointd", sample, {}, {"sid": 1, "seeds": [5]})
    # the guidance is written as MONAI's json.dumps(list of ints)
    assert out["guidance"] == json.dumps(g)


def test_add_initial_seed_point_sid_rules():
    lab = _two_blob_label()
    # valid sid in the sample is used; no draw needed
    out = T("AddInitialSeedPointd", {"label": Item(lab), "sids": [1, 2], "sid": 2}, {},
            {"seeds": [flat((1, 5, 6), 0, 2, 2)]})
    assert json.loads(out["guidance"]) == [[[1, 2, 2, 2]] + [[-1] * 4] * 4, [[-1] * 4] * 5]
    # invalid sample sid -> the params draw
    out = T("AddInitialSeedPointd", {"label": Item(lab), "sids": [1, 2], "sid": 0}, {},
            {"sid": 2, "seeds": [flat((1, 5, 6), 0, 2, 2)]})
    assert json.loads(out["guidance"])[0][0] == [1, 2, 2, 2]
    raises(ValueError, T, "AddInitialSeedPointd", {"label": Item(lab), "sids": [1, 2]}, {}, {"sid": 0, "seeds": [0]})
    raises(ValueError, T, "AddInitialSeedPointd", {"label": Item(lab), "sids": [1, 2]}, {}, {"seeds": [0]})
    # no sids -> sample sid ignored, whole-volume (dims 3) path: one region, 4-entry points from (1, 3, 5, 6); the
    # cdt is 4-D chessboard, so slice 0 (empty) is 1 away from (0, 1, 2, 1): distance 1, not 2 as in the slice
    out = T("AddInitialSeedPointd", {"label": Item(lab), "sid": 1}, {},
            {"seeds": [flat((1, 3, 5, 6), 0, 1, 2, 1)], "with_probability": True})
    assert out["guidance"] == "[[[1, 1, 2, 1]], [[-1, -1, -1, -1]]]", out["guidance"]
    assert out["probability_0"].data.shape == (1, 3, 5, 6)
    # sid selecting an empty slice
    raises(AssertionError, T, "AddInitialSeedPointd", {"label": Item(lab), "sids": [0]}, {}, {"sid": 0, "seeds": [0]})


def test_add_initial_seed_point_2d():
    lab = np.zeros((1, 4, 4))
    lab[0, 0, 0] = lab[0, 3, 3] = 1  # two components -> regions 0 and 1, 3-entry points
    out = T("AddInitialSeedPointd", {"label": Item(lab)}, {"connected_regions": 2},
            {"seeds": [flat((1, 4, 4), 0, 0, 0), flat((1, 4, 4), 0, 3, 3)]})
    assert out["guidance"] == "[[[1, 0, 0], [1, 3, 3]], [[-1, -1, -1], [-1, -1, -1]]]"
    # 4-connected vs 8-connected: a diagonal pair is ONE component
    lab = np.zeros((1, 4, 4))
    lab[0, 1, 1] = lab[0, 2, 2] = 1
    out = T("AddInitialSeedPointd", {"label": Item(lab)}, {"connected_regions": 2},
            {"seeds": [flat((1, 4, 4), 0, 2, 2)]})
    assert out["guidance"] == "[[[1, 2, 2], [-1, -1, -1]], [[-1, -1, -1], [-1, -1, -1]]]"


# ---------------------------------------------------------------------------------------------------------------
# AddGuidanceSignald
# ---------------------------------------------------------------------------------------------------------------
def test_add_guidance_signal_monai_case():
    guidance = [[[1, 0, 2, 2], [1, 1, 2, 2]], [[-1, -1, -1, -1], [-1, -1, -1, -1]]]
    row = [0.0, 0.26689214, 0.37996644, 0.26689214, 0.0]
    plane = [row, [0.26689214, 0.65222847, 0.81548417, 0.65222847, 0.26689214],
             [0.37996635, 0.81548399, 1.0, 0.81548399, 0.37996635],
             [0.26689214, 0.65222847, 0.81548417, 0.65222847, 0.26689214], row]
    expected = np.concatenate([IMAGE2, np.array([[plane, plane]]), np.zeros((1, 2, 5, 5))], 0)
    for g in (guidance, json.dumps(guidance), np.array(guidance)):
        out = T("AddGuidanceSignald", {"image": Item(IMAGE2, dtype="int64"), "guidance": g},
                {"image": "image", "guidance": "guidance"})
        close(out["image"].data, expected, atol=1e-7, rtol=1e-5)
        assert out["image"].dtype == "float64"  # int64 image concatenated with float32 signal (numpy rules)
    out = T("AddGuidanceSignald", {"image": Item(IMAGE2), "guidance": json.dumps(guidance)}, {})
    assert out["image"].dtype == "float32"
    assert np.array_equal(out["image"].data, out["image"].data.astype(np.float32).astype(np.float64))


def _k(x, sigma):
    t = 1.0 / (math.sqrt(2.0) * sigma)
    return 0.5 * (math.erf(t * (x + 0.5)) - math.erf(t * (x - 0.5)))


def test_add_guidance_signal_2d_hand():
    # 2-D image [3, 3, 4] (3 channels, keep 2). Group 0: a point clamped from (9, 0) to (2, 0), a skipped point with a
    # negative entry; group 1: only padding -> zero channel; group 2: point (0.9 -> 0, 3).
    img = np.arange(36.0).reshape(3, 3, 4)
    g = [[[4, 9, 0], [2, -1, 1]], [[-1, -1, -1]], [[1, 0.9, 3]]]
    out = T("AddGuidanceSignald", {"image": Item(img), "guidance": json.dumps(g)},
            {"sigma": 1, "number_intensity_ch": 2})
    data = out["image"].data
    assert data.shape == (5, 3, 4)
    assert np.array_equal(data[:2], img[:2])
    assert np.all(data[3] == 0)
    # separable erf kernel, tail int(4*1+0.5) = 4 covers the whole image: response(i, j) = k(i - pi) k(j - pj)
    def expect(pi, pj):
        r = np.array([[_k(i - pi, 1.0) * _k(j - pj, 1.0) for j in range(4)] for i in range(3)])
        return (r - r.min()) / (r.max() - r.min())
    close(data[2], expect(2, 0), atol=2e-6)
    close(data[4], expect(0, 3), atol=2e-6)
    assert data[2, 2, 0] == 1.0 and data[2].min() == 0.0
    # sigma 0.5 -> tail int(max(2.0, 0.5) + 0.5) = 2: voxels 3 away get nothing (then normalised to 0)
    img1 = np.zeros((1, 1, 6))
    out = T("AddGuidanceSignald", {"image": Item(img1), "guidance": [[[0, 0, 0]]]}, {"sigma": 0.5})
    sig = out["image"].data[1, 0]
    assert sig[3] == 0 and sig[4] == 0 and sig[5] == 0 and sig[2] > 0 and sig[0] == 1.0
    # truncated = 4.0 (GaussianFilter default): sigma 1 -> tail 4, so voxel 4 is reached and voxel 5 is not
    # (truncated 3 would stop at 3)
    out = T("AddGuidanceSignald", {"image": Item(np.zeros((1, 1, 7))), "guidance": [[[0, 0, 0]]]}, {"sigma": 1})
    sig = out["image"].data[1, 0]
    assert sig[4] > 0 and sig[5] == 0 and sig[6] == 0
    close(sig[4], (_k(4, 1.0) * _k(0, 1.0)) / (_k(0, 1.0) ** 2), rtol=1e-3, atol=0)
    raises(NotImplementedError, T, "AddGuidanceSignald", {"image": Item(img1), "guidance": [[]]}, {"batched": True})


# ---------------------------------------------------------------------------------------------------------------
# FindDiscrepancyRegionsd
# ---------------------------------------------------------------------------------------------------------------
def test_find_discrepancy_regions():
    pred = np.array([[[[0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]]])
    out = T("FindDiscrepancyRegionsd", {"label": Item(LABEL), "pred": Item(pred)}, {})
    exp_pos = np.zeros((1, 1, 5, 5))
    exp_pos[0, 0, 1, 3] = 1
    exp_neg = np.zeros((1, 1, 5, 5))
    exp_neg[0, 0, 2, 1] = 1
    disc = out["discrepancy"]
    assert disc.dtype == "float32" and disc.data.shape == (2, 1, 5, 5)
    assert np.array_equal(disc.data, np.concatenate([exp_pos, exp_neg]))
    # thresholds are strict (> 0.5); custom key names
    lab = np.array([[[0.5, 0.51, 1.0, 0.0]]])
    prd = np.array([[[0.9, 0.2, 0.5, 0.6]]])
    out = T("FindDiscrepancyRegionsd", {"l": Item(lab), "p": Item(prd)},
            {"label": "l", "pred": "p", "discrepancy": "x"})
    assert np.array_equal(out["x"].data, [[[0, 1, 1, 0]], [[1, 0, 0, 1]]])


# ---------------------------------------------------------------------------------------------------------------
# AddRandomGuidanced
# ---------------------------------------------------------------------------------------------------------------
def _disc(pos_pts, neg_pts, shape=(1, 5, 5)):
    pos, neg = np.zeros((1,) + shape), np.zeros((1,) + shape)
    for p in pos_pts:
        pos[(0,) + tuple(p)] = 1
    for p in neg_pts:
        neg[(0,) + tuple(p)] = 1
    return Item(np.concatenate([pos, neg]))


def test_add_random_guidance_monai_case():
    # MONAI DATA_4: one pos voxel (0,1,3), one neg voxel (0,2,1) in (1,1,5,5); equal sums -> positive click.
    sample = {"guidance": np.array([[[1, 0, 2, 2]], [[-1, -1, -1, -1]]]).tolist(), "probability": 1.0,
              "discrepancy": _disc([(0, 1, 3)], [(0, 2, 1)], (1, 5, 5))}
    rs = np.random.RandomState(0)
    will = bool(rs.choice([True, False], p=[1.0, 0.0]))
    seed = int(rs.choice(np.array([flat((1, 1, 5, 5), 0, 0, 1, 3)]), size=1, p=[1.0])[0])
    out = T("AddRandomGuidanced", sample, {"guidance": "guidance", "discrepancy": "discrepancy",
                                           "probability": "probability"}, {"will_interact": will, "seed": seed})
    assert out["guidance"] == "[[[1, 0, 2, 2], [1, 0, 1, 3]], [[-1, -1, -1, -1], [-1, -1, -1, -1]]]", out["guidance"]
    assert out["probability"] == 1.0  # the input click probability is untouched


def test_add_random_guidance_branches():
    g0 = json.dumps([[[1, 0, 2, 2]], [[-1, -1, -1, -1]]])
    shp = (1, 1, 5, 5)
    # no interaction: guidance unchanged
    out = T("AddRandomGuidanced", {"guidance": g0, "probability": 0.3, "discrepancy": _disc([(0, 1, 3)], [])},
            {}, {"will_interact": False})
    assert out["guidance"] == g0
    # neg sum > pos sum -> negative click. 2x2 neg block in the corner: the array border is not background, so
    # (0,0) has chessboard distance 2 and the other three voxels 1
    d = _disc([(0, 4, 4)], [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)])
    out = T("AddRandomGuidanced", {"guidance": g0, "probability": 0.5, "discrepancy": d}, {},
            {"will_interact": True, "seed": flat(shp, 0, 0, 1, 1), "with_probability": True})
    assert out["guidance"] == "[[[1, 0, 2, 2], [-1, -1, -1, -1]], [[-1, -1, -1, -1], [1, 0, 1, 1]]]", out["guidance"]
    pm = out["probability_0"].data
    assert pm.shape == shp
    e1, e2 = math.e - 1, math.e ** 2 - 1
    close(pm[0, 0, :2, :2], np.array([[e2, e1], [e1, e1]]) / (e2 + 3 * e1))
    # a 3x3 pos block in the middle of 5x5: centre distance 2
    d = _disc([(0, i, j) for i in (1, 2, 3) for j in (1, 2, 3)], [])
    out = T("AddRandomGuidanced", {"guidance": g0, "probability": 1.0, "discrepancy": d}, {},
            {"seed": flat(shp, 0, 0, 2, 2), "with_probability": True})
    assert json.loads(out["guidance"])[0][1] == [2, 0, 2, 2]
    close(out["probability_0"].data[0, 0, 2, 2], (math.e ** 2 - 1) / ((math.e ** 2 - 1) + 8 * (math.e - 1)))
    # nothing to correct: unchanged even when interacting; list input with floats -> ints out
    out = T("AddRandomGuidanced", {"guidance": [[[1.7, 0, 2, 2]], [[-1, -1, -1, -1]]], "probability": 1.0,
                                   "discrepancy": _disc([], [])}, {}, {})
    assert out["guidance"] == g0
    raises(ValueError, T, "AddRandomGuidanced",
           {"guidance": g0, "probability": 0.5, "discrepancy": _disc([], [])}, {}, {})
    raises(ValueError, T, "AddRandomGuidanced",
           {"guidance": g0, "probability": 1.0, "discrepancy": _disc([(0, 1, 1)], [])},
           {}, {"seed": flat(shp, 0, 0, 0, 0)})


# ---------------------------------------------------------------------------------------------------------------
# SpatialCropForegroundd
# ---------------------------------------------------------------------------------------------------------------
def test_spatial_crop_foreground():
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [10, 20, 30]
    sample = {"image": Item(IMAGE, aff), "label": Item(LABEL, aff)}
    args = {"keys": ["image", "label"], "source_key": "label", "select_fn": None, "channel_indices": None,
            "margin": 0, "spatial_size": [1, 4, 4]}
    out = T("SpatialCropForegroundd", sample, args)
    assert np.array_equal(out["image"].data, [[[[1, 2, 1], [2, 3, 2], [1, 2, 1]]]])
    assert out["foreground_start_coord"] == [0, 1, 1] and out["foreground_end_coord"] == [1, 4, 4]
    assert out["foreground_original_shape"] == [1, 1, 5, 5] and out["foreground_cropped_shape"] == [1, 1, 3, 3]
    close(out["image"].affine[:3, 3], [10, 23, 34])
    args2 = dict(args, spatial_size=[2, 4, 4])  # box (1,3,3) smaller in every axis -> centre crop
    out = T("SpatialCropForegroundd", sample, args2)
    assert out["image"].data.shape == (1, 1, 4, 4)
    # centre int(mean) = [0, 2, 2], start = max(c - size // 2, 0) = [0, 0, 0], end = start + size (not clipped)
    assert out["foreground_start_coord"] == [0, 0, 0] and out["foreground_end_coord"] == [2, 4, 4]
    out = T("SpatialCropForegroundd", sample, dict(args, start_coord_key="s", end_coord_key="e"))
    assert out["s"] == [0, 1, 1] and out["e"] == [1, 4, 4]


# ---------------------------------------------------------------------------------------------------------------
# inference transforms (MONAI test cases)
# ---------------------------------------------------------------------------------------------------------------
def test_add_guidance_from_points():
    d5 = {"image": Item(np.arange(25).reshape((1, 1, 5, 5))), "spatial_shape": [5, 5, 1],
          "foreground": [[2, 2, 0]], "background": []}
    d6 = {"image": Item(np.arange(25).reshape((1, 1, 5, 5))), "spatial_shape": [5, 2, 1],
          "foreground": [[2, 1, 0]], "background": [[1, 0, 0]]}
    d7 = {"image": Item(np.arange(500).reshape((1, 5, 10, 10))), "spatial_shape": [20, 20, 10],
          "foreground": [[10, 14, 6], [10, 14, 8]], "background": [[10, 16, 8]], "slice": 6}
    cases = [
        ({"ref_image": "image", "spatial_dims": 3, "guidance": "guidance", "depth_first": True}, d5, [[0, 2, 2]], []),
        ({"ref_image": "image", "spatial_dims": 3, "guidance": "guidance", "depth_first": True}, d6, [[0, 2, 2]],
         [[0, 1, 0]]),
        ({"ref_image": "image", "spatial_dims": 3, "guidance": "guidance", "depth_first": True}, d7,
         [[3, 5, 7], [4, 5, 7]], [[4, 5, 8]]),
        ({"ref_image": "image", "spatial_dims": 2, "guidance": "guidance", "depth_first": True}, d6, [[2, 2]],
         [[1, 0]]),
        ({"ref_image": "image", "spatial_dims": 2, "guidance": "guidance", "depth_first": True, "slice_key": "slice"},
         d7, [[5, 7]], []),
        ({"ref_image": "image", "spatial_dims": 2, "guidance": "guidance", "depth_first": True}, d5, [[2, 2]], []),
    ]
    for args, data, pos, neg in cases:
        g = json.loads(T("AddGuidanceFromPointsd", data, args)["guidance"])
        assert g[0] == pos and g[1] == neg, (args, g)
    # 2-D appends the slice index; original_shape overrides spatial_shape
    g = json.loads(T("AddGuidanceFromPointsd", d7, cases[4][0])["guidance"])
    assert g[2] == 6  # slice_idx is the (unscaled) axis-0 value of the rolled clicks
    d = dict(d5, original_shape=[10, 10, 2])
    g = json.loads(T("AddGuidanceFromPointsd", d, cases[0][0])["guidance"])
    assert g == [[[0, 1, 1]], []]
    raises(RuntimeError, T, "AddGuidanceFromPointsd", {"image": d5["image"], "foreground": [], "background": []},
           {"ref_image": "image"})


def test_spatial_crop_guidance():
    img = Item(np.arange(500).reshape((1, 5, 10, 10)))
    guidance = [[[3, 5, 7], [4, 5, 7]], [[4, 5, 8]]]
    s = {"image": img, "guidance": guidance}
    out = T("SpatialCropGuidanced", s,
            {"keys": ["image"], "guidance": "guidance", "spatial_size": [1, 4, 4], "margin": 0})
    assert np.array_equal(out["image"].data, [[[[357, 358]], [[457, 458]]]])
    assert out["foreground_start_coord"] == [3, 5, 7] and out["foreground_end_coord"] == [5, 6, 9]
    assert json.loads(out["guidance"]) == [[[0, 0, 0], [1, 0, 0]], [[1, 0, 1]]]
    out = T("SpatialCropGuidanced", s, {"keys": ["image"], "guidance": "guidance", "spatial_size": [2, 2], "margin": 1})
    exp = np.arange(500).reshape(5, 10, 10)[2:5, 4:7, 6:10][None]
    assert np.array_equal(out["image"].data, exp)
    out = T("SpatialCropGuidanced", dict(s, guidance=json.dumps(guidance)),
            {"keys": ["image"], "guidance": "guidance", "spatial_size": [3, 3], "margin": 0})
    exp = np.arange(500).reshape(5, 10, 10)[:, 4:7, 7:10][None]
    assert np.array_equal(out["image"].data, exp)
    # centre (4, 5, 8) with centre[0] replaced by spatial_size[0] // 2 = 10 // 2 (spatial_size [10, 3, 3] from the
    # image's axis-1 size); stop 10 is recorded unclipped
    assert out["foreground_start_coord"] == [0, 4, 7] and out["foreground_end_coord"] == [10, 7, 10]
    assert out["foreground_original_shape"] == [1, 5, 10, 10] and out["foreground_cropped_shape"] == [1, 5, 3, 3]
    assert json.loads(out["guidance"]) == [[[3, 1, 0], [4, 1, 0]], [[4, 1, 1]]]
    close(out["image"].affine[:3, 3], [0, 4, 7])


def test_resize_guidance():
    s = {"image": Item(np.arange(1000).reshape((1, 5, 10, 20))), "foreground_cropped_shape": [1, 10, 20, 40],
         "guidance": [[[6, 10, 14], [8, 10, 14]], [[8, 10, 16]]]}
    out = T("ResizeGuidanced", s, {"ref_image": "image", "guidance": "guidance"})
    assert json.loads(out["guidance"]) == [[[3, 5, 7], [4, 5, 7]], [[4, 5, 8]]]
    s2 = dict(s, foreground_cropped_shape=[1, 3, 30, 40], guidance=json.dumps([[[1, 1, 1]], []]))
    out = T("ResizeGuidanced", s2, {"ref_image": "image", "guidance": "guidance"})
    assert json.loads(out["guidance"]) == [[[1, 0, 0]], []]  # 5/3 -> 1.67 -> 1; 1/3 -> 0


def test_restore_label():
    s10 = {"image": Item(np.arange(9).reshape((1, 1, 3, 3))), "spatial_shape": [3, 3, 1],
           "foreground_start_coord": [0, 0, 0], "foreground_end_coord": [1, 3, 3],
           "foreground_original_shape": [1, 1, 3, 3], "foreground_cropped_shape": [1, 1, 3, 3],
           "pred": Item(np.array([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]))}
    out = T("RestoreLabeld", s10, {"keys": ["pred"], "ref_image": "image", "mode": "nearest"})
    assert out["pred"].data.shape == (1, 1, 3, 3) and out["pred"].dtype == "float32"
    assert np.array_equal(out["pred"].data[0], [[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])
    s11 = {"image": Item(np.arange(500).reshape((1, 5, 10, 10))), "spatial_shape": [20, 20, 10],
           "foreground_start_coord": [2, 2, 2], "foreground_end_coord": [4, 4, 4],
           "foreground_original_shape": [1, 5, 10, 10], "foreground_cropped_shape": [1, 2, 2, 2],
           "original_affine": np.diag([2.0, 2.0, 2.0, 1.0]).tolist(),
           "pred": Item(np.array([[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]))}
    out = T("RestoreLabeld", s11, {"keys": ["pred"], "ref_image": "image", "mode": "nearest"})
    exp = np.zeros((10, 20, 20))
    blk = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]).repeat(2, 0).repeat(2, 1).repeat(2, 2)
    exp[4:8, 4:8, 4:8] = blk
    assert np.array_equal(out["pred"].data[0], exp)
    close(out["pred"].affine, np.diag([2.0, 2.0, 2.0, 1.0]))
    # undo a resize first: a (1,1,4,4) prediction back to the cropped (1,1,2,2), into the box of a (1,1,3,3) volume
    s = dict(s10, foreground_start_coord=[0, 1, 1], foreground_end_coord=[1, 3, 3],
             foreground_cropped_shape=[1, 1, 2, 2],
             pred=Item(np.arange(16.0).reshape(1, 1, 4, 4)))
    out = T("RestoreLabeld", s, {"keys": ["pred"], "ref_image": "image"})
    assert np.array_equal(out["pred"].data[0, 0], [[0, 0, 0], [0, 0, 2], [0, 8, 10]])
    # 2-D slice path: result (1, 3, 3) written into slice 2 of zeros(roll(spatial_shape)) = (4, 3, 3), float64
    s = {"foreground_start_coord": [0, 0], "foreground_end_coord": [3, 3], "foreground_original_shape": [1, 3, 3],
         "foreground_cropped_shape": [1, 3, 3], "spatial_shape": [3, 3, 4], "slice_idx": [2],
         "pred": Item(np.arange(9.0).reshape(1, 3, 3))}
    out = T("RestoreLabeld", s, {"keys": ["pred"], "ref_image": "image"})
    assert out["pred"].data.shape == (1, 4, 3, 3) and out["pred"].dtype == "float64"
    assert np.array_equal(out["pred"].data[0, 2], np.arange(9.0).reshape(3, 3)) and out["pred"].data[0, :2].sum() == 0
    out = T("RestoreLabeld", s, {"keys": ["pred"], "ref_image": "image", "slice_only": True})
    assert out["pred"].data.shape == (1, 3, 3)


# ---------------------------------------------------------------------------------------------------------------
# run.py protocol with non-tensor inputs and outputs
# ---------------------------------------------------------------------------------------------------------------
def _run(tmp, name, transform, inputs, args, params):
    spec = {}
    for k, v in inputs.items():
        if isinstance(v, np.ndarray):
            path = os.path.join(tmp, f"{name}_{k}.f64")
            v.astype("<f8").tofile(path)
            spec[k] = {"raw": path, "shape": list(v.shape), "affine": np.eye(4).tolist(), "dtype": "float32"}
        else:
            spec[k] = {"value": v}
    req = {"transform": transform, "args": args, "params": params, "inputs": spec,
           "output_dir": os.path.join(tmp, name)}
    with open(os.path.join(tmp, f"{name}.json"), "w") as f:
        json.dump(req, f)
    res = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), os.path.join(tmp, f"{name}.json")],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)["outputs"][0]


def test_run_py_protocol():
    with tempfile.TemporaryDirectory() as tmp:
        lab = _two_blob_label()
        o = _run(tmp, "a", "FindAllValidSlicesd", {"label": lab}, {}, {})
        assert o["sids"] == {"value": [1, 2]}
        o = _run(tmp, "b", "AddInitialSeedPointd", {"label": lab, "sids": [1, 2]}, {"connected_regions": 2},
                 {"sid": 1, "seeds": [5, 13], "with_probability": True})
        assert json.loads(o["guidance"]["value"]) == [[[1, 1, 0, 5], [2, 1, 2, 1]], [[-1] * 4] * 2]
        assert o["probability_1"]["shape"] == [1, 5, 6] and o["sids"] == {"value": [1, 2]}
        p1 = np.fromfile(os.path.join(tmp, "b", "0_probability_1.f64"), dtype="<f8").reshape(1, 5, 6)
        assert abs(p1.sum() - 1) < 1e-12
        disc = np.concatenate([np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 5, 5))])
        disc[1, 0, 2, 1] = 1
        o = _run(tmp, "c", "AddRandomGuidanced",
                 {"guidance": "[[[1, 0, 2, 2]], [[-1, -1, -1, -1]]]", "discrepancy": disc, "probability": 0.6},
                 {}, {"will_interact": True, "seed": 11})
        assert o["guidance"]["value"] == "[[[1, 0, 2, 2], [-1, -1, -1, -1]], [[-1, -1, -1, -1], [1, 0, 2, 1]]]"
        assert o["probability"] == {"value": 0.6}
        o = _run(tmp, "d", "AddGuidanceSignald", {"image": IMAGE2.astype(float), "guidance": o["guidance"]["value"]},
                 {}, {})
        assert o["image"]["shape"] == [3, 2, 5, 5] and o["image"]["dtype"] == "float32"
        o = _run(tmp, "e", "SpatialCropForegroundd", {"image": IMAGE.astype(float), "label": LABEL.astype(float)},
                 {"keys": ["image", "label"], "source_key": "label", "spatial_size": [1, 4, 4]}, {})
        assert o["foreground_start_coord"] == {"value": [0, 1, 1]} and o["image"]["shape"] == [1, 1, 3, 3]
        o = _run(tmp, "f", "FindDiscrepancyRegionsd", {"label": LABEL.astype(float), "pred": np.zeros((1, 1, 5, 5))},
                 {}, {})
        assert o["discrepancy"]["shape"] == [2, 1, 5, 5] and o["discrepancy"]["dtype"] == "float32"
        got = np.fromfile(os.path.join(tmp, "f", "0_discrepancy.f64"), dtype="<f8").reshape(2, 1, 5, 5)
        assert np.array_equal(got[0:1], LABEL) and not got[1].any()
        img = np.arange(500.0).reshape((1, 5, 10, 10))
        o = _run(tmp, "g", "AddGuidanceFromPointsd",
                 {"image": img, "spatial_shape": [20, 20, 10], "foreground": [[10, 14, 6], [10, 14, 8]],
                  "background": [[10, 16, 8]]}, {"ref_image": "image", "spatial_dims": 3}, {})
        g = o["guidance"]["value"]
        assert json.loads(g) == [[[3, 5, 7], [4, 5, 7]], [[4, 5, 8]]]
        o = _run(tmp, "h", "SpatialCropGuidanced", {"image": img, "guidance": g},
                 {"keys": ["image"], "guidance": "guidance", "spatial_size": [3, 3], "margin": 0}, {})
        assert o["image"]["shape"] == [1, 5, 3, 3] and o["foreground_cropped_shape"] == {"value": [1, 5, 3, 3]}
        assert o["foreground_end_coord"] == {"value": [10, 7, 10]}
        o = _run(tmp, "i", "ResizeGuidanced", {"image": np.zeros((1, 10, 6, 6)), "guidance": o["guidance"]["value"],
                                               "foreground_cropped_shape": [1, 5, 3, 3]},
                 {"guidance": "guidance", "ref_image": "image"}, {})
        assert json.loads(o["guidance"]["value"]) == [[[6, 2, 0], [8, 2, 0]], [[8, 2, 2]]]
        o = _run(tmp, "j", "RestoreLabeld",
                 {"pred": np.ones((1, 2, 2, 2)), "spatial_shape": [10, 10, 5], "foreground_start_coord": [2, 2, 2],
                  "foreground_end_coord": [4, 4, 4], "foreground_original_shape": [1, 5, 10, 10],
                  "foreground_cropped_shape": [1, 2, 2, 2]}, {"keys": ["pred"], "ref_image": "image"}, {})
        assert o["pred"]["shape"] == [1, 5, 10, 10]
        got = np.fromfile(os.path.join(tmp, "j", "0_pred.f64"), dtype="<f8").reshape(5, 10, 10)
        assert got.sum() == 8 and got[2:4, 2:4, 2:4].all()


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
