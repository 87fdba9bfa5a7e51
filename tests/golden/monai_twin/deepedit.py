"""NumPy/PyTorch twin of MONAI 1.4's ``monai.apps.deepedit.transforms`` (DeepEdit: automatic segmentation refined
by clicks, several labels at once).

An independent re-implementation written from MONAI's documented/observed behaviour (not MONAI code), with the
conventions of deepgrow.py (``fn(sample, args, params)``; Items are ``[C, *spatial]`` float64 data with a dtype
name). DeepEdit arrays are channel first and depth LAST: ``[C, H, W, D]``; slices are taken along the last axis.

Representation of MONAI's dict values (MONAI keeps Python dicts in the sample):

* ``label_names`` ({name: value}, insertion order kept), ``sids`` ({name: [slice, ...]}) and ``guidance``
  ({name: [[point], ...]}) are read from a dict or a JSON string of one, and WRITTEN as JSON strings
  ``json.dumps(dict)``. (MONAI's AddInitialSeedPoint*d writes one JSON string per name; AddRandomGuidanceDeepEditd
  writes lists.)
* ``discrepancy`` ({name: [pos, neg]}, each shaped like the label) is ONE Item whose channels are
  ``pos_0, neg_0, pos_1, neg_1, ...`` in ``label_names`` order.

Random draws (MONAI: ``self.R.choice`` over flat indices with p = (exp(d) - 1) / sum, numpy's global
``np.random.choice`` in DiscardAddGuidanced, Python's ``random`` for the click budget) come from ``params``:

* AddInitialSeedPointMissingLabelsd: ``sids`` {name: chosen slice} and ``seeds`` {name: [flat index, ...]}
  (one per clicked region, in region order), each checked to be a candidate;
* AddRandomGuidanceDeepEditd: ``will_interact`` (bool), ``flat`` = "argmax" (each click at the first voxel of
  highest probability, which is always a candidate), ``num_clicks`` (MONAI's random.randint(1, 10)) and
  ``picks`` (indices into the label names: MONAI's successive random.choice);
* DiscardAddGuidanced: ``discard`` (bool; ignored when probability >= 1).
"""
import json
import os
import sys

import numpy as np
import scipy.ndimage as ndi
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepgrow as G  # noqa: E402
import spatial as S  # noqa: E402

TRANSFORMS = {}
_keys = G._keys


def _register(name):
    def deco(fn):
        for alias in (name, name[:-1] + "D", name[:-1] + "Dict"):
            TRANSFORMS[alias] = fn
        return fn

    return deco


def _dict(v):
    if isinstance(v, str):
        return json.loads(v)
    return dict(v)


def _mask_of(label, name, value):
    """MONAI's per-name mask of a label: == value for a name, != value (then 1 - ...) for "background"."""
    t = np.copy(label)
    if name != "background":
        t[t != float(value)] = 0
    else:
        t[t != float(value)] = 1
        t = 1 - t
    return t


def _signal(shape, points, sigma):
    """One guidance channel [1, *shape[-3:]] (float32): the points (last 3 entries, int, clamped; any negative
    entry skips the point) set to 1, Gaussian-smoothed (MONAI GaussianFilter, erf, 4-sigma tail) and min-max
    normalised; all zero when no point is set."""
    sig = np.zeros((1,) + tuple(shape[-3:]), dtype=np.float32)
    if not len(points):
        return sig
    for p in points:
        if np.any(np.asarray(p) < 0):
            continue
        c = [max(0, min(int(p[j - 3]), shape[j - 3] - 1)) for j in range(3)]
        sig[(0,) + tuple(c)] = 1.0
    if np.max(sig[0]) > 0:
        t = torch.tensor(sig[0])[None, None]
        s = S.gaussian_filter(t, sigma, truncated=4.0)[0, 0].numpy().astype(np.float32)
        sig[0] = (s - np.min(s)) / (np.max(s) - np.min(s))
    return sig


@_register("NormalizeLabelsInDatasetd")
def normalize_labels(sample, args, params):
    """NormalizeLabelsInDatasetd(keys, label_names): a float64 zeros label; for idx, (name, value) in
    enumerate(label_names.items(), start=1): name != "background" -> voxels == value become idx and
    label_names[name] = idx; "background" -> 0 (its idx is skipped, as MONAI's enumerate counts it).
    d["label_names"] = the new mapping."""
    d = dict(sample)
    names = args["label_names"]
    for key in _keys(args):
        item = d[key]
        out = np.zeros(item.data.shape)
        new = {}
        for idx, (name, val) in enumerate(names.items(), start=1):
            if name != "background":
                new[name] = idx
                out[item.data == val] = idx
            else:
                new["background"] = 0
        d["label_names"] = json.dumps(new)
        d[key] = type(item)(out, item.affine, "float64")
    return d


@_register("FindAllValidSlicesMissingLabelsd")
def find_valid_slices_missing(sample, args, params):
    """FindAllValidSlicesMissingLabelsd(keys="label", sids="sids"): label [1, H, W, D]; for each name the slices
    s of the last axis whose label[0][..., s] holds the name's value; none -> [-1] * 10."""
    d = dict(sample)
    label = d["label"].data
    if label.shape[0] != 1:
        raise ValueError("Only supports single channel labels!")
    if label.ndim != 4:
        raise ValueError("Only supports label with shape CHWD!")
    names = _dict(d["label_names"])
    sids = {}
    for name, val in names.items():
        ids = [s for s in range(label.shape[-1]) if val in label[0][..., s]]
        sids[name] = ids if ids else [-1] * 10
    d[args.get("sids", "sids")] = json.dumps(sids)
    return d


@_register("AddInitialSeedPointMissingLabelsd")
def add_initial_seed_missing(sample, args, params):
    """AddInitialSeedPointMissingLabelsd(keys="label", guidance="guidance", sids="sids", sid="sid",
    connected_regions=5). For each name of sids: the slice (params sids[name]; must be one of the name's sids,
    -1 meaning the last slice as numpy indexes), the name's mask on it ([1, H, W]), its components (full
    connectivity); for each of the first connected_regions components one click [d, h, w, slice] drawn from
    params seeds[name] (flat indices over [1, H, W]) with d the chessboard distance at the click; [-1] * 4 for
    each missing component, or one [-1] * 4 when the slice holds none of the name. Without sids for a name
    (never for FindAllValidSlicesMissingLabelsd's output) MONAI clicks the whole volume; not needed here."""
    d = dict(sample)
    label = d["label"].data
    names = _dict(d["label_names"])
    sids = _dict(d[args.get("sids", "sids")])
    regions = int(args.get("connected_regions", 5))
    guidance = {}
    for name in sids.keys():
        sid = params["sids"][name]
        if sid not in sids[name]:
            raise ValueError(f"slice {sid} is not one of {name}'s sids")
        mask = _mask_of(label, name, names[name])
        sl = (mask[0][..., sid][np.newaxis] > 0.5).astype(np.float32)
        blobs, n = ndi.label(sl.astype(int), structure=np.ones((3, 3, 3)))
        out = []
        seeds = list(params["seeds"].get(name, []))
        if n <= 0:
            out.append([-1] * 4)
        else:
            for ridx in range(1, regions + 1):
                region = (blobs == ridx).astype(np.float32)
                if np.sum(region) == 0:
                    out.append([-1] * 4)
                    continue
                g, _ = G._sample_region(region, seeds.pop(0), f"{name} region {ridx}")
                out.append([g[0], g[-2], g[-1], sid])
        guidance[name] = np.asarray(out).astype(int).tolist()
    d[args.get("guidance", "guidance")] = json.dumps(guidance)
    return d


@_register("AddGuidanceSignalDeepEditd")
def add_guidance_signal_deepedit(sample, args, params):
    """AddGuidanceSignalDeepEditd(keys="image", guidance="guidance", sigma=3, number_intensity_ch=1): image
    [:number_intensity_ch] followed by one channel per guidance name (in the guidance's order, see _signal).
    dtype: numpy result_type(image, float32)."""
    d = dict(sample)
    item = d["image"]
    guidance = _dict(d[args.get("guidance", "guidance")])
    nch = int(args.get("number_intensity_ch", 1))
    sigma = args.get("sigma", 3)
    out_dtype = np.result_type(np.dtype(item.dtype), np.float32)
    chans = [item.data[0:nch].astype(out_dtype)]
    for name in guidance.keys():
        g = guidance[name]
        g = json.loads(g) if isinstance(g, str) else g
        chans.append(_signal(item.data.shape, g, sigma).astype(out_dtype))
    d["image"] = type(item)(np.concatenate(chans, 0).astype(np.float64), item.affine, out_dtype.name)
    return d


@_register("DiscardAddGuidanced")
def discard_add_guidance(sample, args, params):
    """DiscardAddGuidanced(keys, number_intensity_ch=1, probability=1.0, label_names): with the probability (always
    at >= 1; else params["discard"]) the guidance channels become zeros: set in place when the image has
    number_intensity_ch + len(label_names) channels, else appended."""
    d = dict(sample)
    nch = int(args.get("number_intensity_ch", 1))
    nl = len(args.get("label_names") or [])
    prob = float(args.get("probability", 1.0))
    for key in _keys(args):
        item = d[key]
        img = item.data.copy()
        if prob >= 1.0 or params.get("discard", False):
            sig = np.zeros((nl,) + img.shape[-3:])
            if img.shape[0] == nch + nl:
                img[nch:] = sig
            else:
                img = np.concatenate([img, sig], 0)
        d[key] = type(item)(img, item.affine, item.dtype)
    return d


@_register("FindDiscrepancyRegionsDeepEditd")
def find_discrepancy_deepedit(sample, args, params):
    """FindDiscrepancyRegionsDeepEditd(keys="label", pred="pred", discrepancy="discrepancy"): for each name of
    label_names the name's mask of the label and of the prediction (== value; for "background" != value), then
    pos = (l - p > 0), neg = (l - p < 0), float32."""
    d = dict(sample)
    label = d["label"]
    pred = d[args.get("pred", "pred")].data
    names = _dict(d["label_names"])
    chans = []
    for name, val in names.items():
        lab = (_mask_of(label.data, name, val) > 0.5).astype(np.float32)
        prd = (_mask_of(pred, name, val) > 0.5).astype(np.float32)
        disp = lab - prd
        chans += [(disp > 0).astype(np.float32), (disp < 0).astype(np.float32)]
    d[args.get("discrepancy", "discrepancy")] = type(label)(np.concatenate(chans, 0).astype(np.float64),
                                                            label.affine, "float32")
    return d


def _find_guidance(region):
    """MONAI's find_guidance with the click at the first voxel of highest probability (params flat="argmax")."""
    if np.sum(region > 0) <= 0:
        return None
    distance = ndi.distance_transform_cdt(region).ravel()
    probability = np.exp(distance.astype(np.float64)) - 1.0
    idx = np.flatnonzero(region.ravel() > 0)
    seed = idx[np.argmax(probability[idx])]
    g = [int(v) for v in np.unravel_index(seed, region.shape)]
    g[0] = int(distance[seed])
    return g


@_register("AddRandomGuidanceDeepEditd")
def add_random_guidance_deepedit(sample, args, params):
    """AddRandomGuidanceDeepEditd(keys, guidance="guidance", discrepancy="discrepancy", probability="probability").
    When params will_interact: each name's guidance without the points holding -1; then for each name L in
    label_names order: a click in L's positive discrepancy when it has any (appended to L); then for every name K
    whose mask overlaps L's negative discrepancy in more than 50 voxels, a click in that overlap (appended to K).
    Then the click budget: picks (indices of names, MONAI's random.choice) are taken in turn, a name not yet kept
    is kept and its click count added; once the count reaches num_clicks every name not kept loses its clicks;
    the loop also ends when every name is kept. The guidance is written back (JSON string of the dict)."""
    d = dict(sample)
    if not params.get("will_interact", False):
        return d
    if params.get("flat", "argmax") != "argmax":
        raise ValueError("only flat='argmax' is supported")
    names = _dict(d["label_names"])
    old = _dict(d[args.get("guidance", "guidance")])
    disc = d[args.get("discrepancy", "discrepancy")].data
    labels = d["label"].data
    guidance = {}
    for name in names.keys():
        g = old[name]
        g = json.loads(g) if isinstance(g, str) else g
        guidance[name] = [p for p in g if -1 not in p]
    for li, name in enumerate(names.keys()):
        pos, neg = disc[2 * li:2 * li + 1], disc[2 * li + 1:2 * li + 2]
        other = {}
        for k, v in names.items():
            other[k] = np.sum(neg * (_mask_of(labels, k, v) > 0.5).astype(np.float32))
        if np.sum(pos) > 0:
            guidance[name].append(_find_guidance(pos))
        for k in names.keys():
            if other[k] > 50:
                guidance[k].append(_find_guidance(neg * (_mask_of(labels, k, names[k]) > 0.5).astype(np.float32)))
    num_clicks = int(params["num_clicks"])
    picks = list(params["picks"])
    keys = list(names.keys())
    keep = []
    counter = 0
    while True:
        aux = keys[picks.pop(0)]
        if aux not in keep:
            keep.append(aux)
            counter += len(guidance[aux])
            if counter >= num_clicks:
                for k in keys:
                    if k not in keep:
                        guidance[k] = []
                break
        if len(keep) == len(keys):
            break
    d[args.get("guidance", "guidance")] = json.dumps(guidance)
    return d
