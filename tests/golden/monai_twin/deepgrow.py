"""NumPy/PyTorch twin of MONAI 1.4's ``monai.apps.deepgrow.transforms`` dictionary transforms.

An independent re-implementation written from MONAI's documented/observed behaviour (not MONAI code). Every
entry of ``TRANSFORMS`` is ``fn(sample, args, params)`` like the spatial/intensity twins:

* ``sample``: key -> ``Item`` (``.data`` float64 ``[C, *spatial]``, ``.affine`` 4x4, ``.dtype`` str) or a plain
  JSON value (ints, floats, strings, nested lists);
* ``args``: MONAI's constructor arguments as a config gives them (same names and defaults as MONAI 1.4; the
  key-name arguments such as ``label="label"`` name sample keys);
* ``params``: what MONAI draws at random (documented per function).

Representation conventions shared by all transforms here:

* ``guidance`` is read from a JSON string, a nested list or an ndarray, and is always WRITTEN as a JSON string
  ``json.dumps(nested_list)`` (default separators). MONAI writes a JSON string in AddInitialSeedPointd and
  AddRandomGuidanced, and a Python list in AddGuidanceFromPointsd / SpatialCropGuidanced / ResizeGuidanced.
* ``discrepancy`` (MONAI: a Python list ``[pos, neg]``, each shaped like the label ``(C, ...)``) is ONE Item
  whose data is ``np.concatenate([pos, neg], axis=0)``; channel halves are split back on input.
* ``sids`` is a list of ints, ``probability`` a float.
* Values MONAI keeps in ``<key>_meta_dict`` (crop coordinates and shapes, ``spatial_shape``, ...) are top-level
  JSON values of the sample, named like MONAI's meta-dict entries.
* MONAI 1.4 has no ``batched`` argument any more (these transforms act on one decollated sample, as
  ``monai.apps.deepgrow.interaction.Interaction`` calls them); ``batched: true`` raises here, ``false`` is
  accepted and ignored.

Random draws: MONAI uses ``self.R.choice(idx, size=1, p=...)`` over flat indices of a (label-shaped) array with
``p = (exp(d) - 1) / sum`` where ``d`` is scipy's ``distance_transform_cdt`` (chessboard) of the region; the twin
takes the chosen flat index from ``params`` and checks that its probability is > 0. With
``params["with_probability"] = true`` the normalised probability maps are added as extra Items so a caller can
compare sampling frequencies.
"""
import json
import os
import sys

import numpy as np
import scipy.ndimage as ndi
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spatial as S  # noqa: E402

TRANSFORMS = {}


def _register(name):
    def deco(fn):
        for alias in (name, name[:-1] + "D", name[:-1] + "Dict"):
            TRANSFORMS[alias] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def _no_batched(args):
    if args.get("batched", False):
        raise NotImplementedError("batched=True is not supported (MONAI 1.4 deepgrow transforms are per-sample)")


def _new(proto, data, affine=None, dtype=None):
    return type(proto)(data, proto.affine if affine is None else affine, proto.dtype if dtype is None else dtype)


def _load_guidance(g):
    """JSON string / nested list / ndarray -> a fresh nested Python list."""
    if isinstance(g, str):
        return json.loads(g)
    if isinstance(g, np.ndarray):
        return g.tolist()
    return json.loads(json.dumps(_plain(g)))


def _plain(v):
    """numpy scalars/arrays -> Python ints/floats/lists (JSON-serialisable)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _dump(g):
    return json.dumps(_plain(g))


def _keys(args):
    k = args["keys"]
    return [k] if isinstance(k, str) else list(k)


def _present(sample, args):
    out = []
    for k in _keys(args):
        if k in sample:
            out.append(k)
        elif not args.get("allow_missing_keys", False):
            raise KeyError(f"Key `{k}` of transform was missing in the data and allow_missing_keys==False.")
    return out


def _rep(v, n):
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(f"sequence must have length {n}, got {len(v)}")
        return list(v)
    return [v] * n


def _sample_region(region, seed, what):
    """One MONAI draw over `region` (any shape): distance_transform_cdt (chessboard) -> p = (exp(d)-1)/sum over
    the voxels with region > 0. `seed` is the flat index MONAI's R.choice picked. Returns (g, pmap) where
    g = unravel_index(seed, region.shape) as a list with g[0] replaced by the distance at the seed."""
    region = np.asarray(region, dtype=np.float32)
    distance = ndi.distance_transform_cdt(region).ravel()  # metric="chessboard" is scipy's and MONAI's default
    probability = np.exp(distance) - 1.0
    idx = np.flatnonzero(region.ravel() > 0)
    p = probability[idx] / np.sum(probability[idx])
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        # numpy's RandomState.choice raises for negative/NaN probabilities. (A region with no background anywhere
        # in the array has scipy's cdt -1 everywhere: equal negative weights, which normalise to a uniform map.)
        raise ValueError("probabilities are not non-negative")
    if seed is None:
        raise ValueError(f"params must give the chosen flat index for {what}")
    seed = int(seed)
    pos = np.searchsorted(idx, seed)
    if pos >= len(idx) or idx[pos] != seed or not p[pos] > 0:
        raise ValueError(f"{what}: flat index {seed} has zero probability (not a candidate)")
    g = [int(v) for v in np.unravel_index(seed, region.shape)]
    g[0] = int(distance[seed])  # MONAI: "for debug"
    pmap = np.zeros(region.size, dtype=np.float64)
    pmap[idx] = p
    return g, pmap.reshape(region.shape)


def _prob_item(proto, pmap):
    """A probability map as an Item (leading axis = the region array's first axis)."""
    return type(proto)(pmap, proto.affine, "float64")


def _full_structure(ndim):
    return np.ones((3,) * ndim, dtype=bool)


# ----------------------------------------------------------------------------------------------------------------
# training transforms
# ----------------------------------------------------------------------------------------------------------------
@_register("FindAllValidSlicesd")
def find_all_valid_slices(sample, args, params):
    """FindAllValidSlicesd(label="label", sids="sids"). No params.

    label must be [1, D, H, W] (ValueError otherwise, as MONAI). sids = [s for s in range(D) if
    sum(label[0, s]) != 0], written as a list of ints (MONAI: np.ndarray). When no slice qualifies the sids key is
    NOT written (MONAI only sets it when non-empty), so an existing value stays."""
    d = dict(sample)
    label = d[args.get("label", "label")].data
    if label.shape[0] != 1:
        raise ValueError(f"Only supports single channel labels, got label shape {label.shape}!")
    if label.ndim != 4:
        raise ValueError(f"Only supports label with shape CDHW, got label shape {label.shape}!")
    sids = [s for s in range(label.shape[1]) if np.sum(label[0][s]) != 0]
    if len(sids):
        d[args.get("sids", "sids")] = sids
    return d


@_register("AddInitialSeedPointd")
def add_initial_seed_point(sample, args, params):
    """AddInitialSeedPointd(label="label", guidance="guidance", sids="sids", sid="sid", connected_regions=5).

    params: {"sid": int | null, "seeds": [flat index, ...], "with_probability": bool}.

    * slice choice (MONAI randomize): if the sample has no ``sids`` value -> sid = None (a ``sid`` value in the
      sample is then ignored). Otherwise, if the sample's ``sid`` is present and in sids it is used; else MONAI
      draws R.choice(sids) and the twin takes params["sid"] (must be in sids; a params sid that contradicts a
      valid sample sid raises).
    * label [C, ...]: dimensions = 3 if label.ndim > 3 else 2. With a sid and dimensions 3 the work array is
      label[0][sid][np.newaxis] (shape (1, H, W), dims = 2). Binarised > 0.5. For dims == 2 connected components
      are labelled with full connectivity over the work array (skimage.measure.label default; here
      scipy.ndimage.label with a 3x...x3 ones structure - on the (1, H, W) array that is 8-connectivity in the
      slice). Both libraries number components by the raster (C-order) position of their first voxel: skimage's
      union-find keeps the smallest index as root and relabels roots in scan order; scipy's two-pass labelling
      assigns labels in scan order (checked empirically for scipy). No component -> AssertionError("Not a valid
      Label"). For dims == 3 (no sid) the whole binarised label [C, D, H, W] is one region.
    * for region k (ridx = k + 1 = 1..connected_regions, or only 1 when dims == 3): empty -> [-1]*(dimensions+1);
      else params["seeds"][k] = the flat index (into the region array: (1, H, W) or [C, D, H, W]) MONAI drew;
      g = unravel_index(seed) with g[0] = chessboard distance at the seed; appended as g, except with a sid in
      3-D where it is [g[0], sid, g[-2], g[-1]]. Components are numbered 1..n so seeds needs exactly the first n
      entries; extra entries are ignored.
    * guidance = json.dumps([pos, [[-1]*(dimensions+1)] * len(pos)]) (MONAI 1.4 also writes a JSON string).
    * with_probability: extra Items ``probability_<k>`` = normalised sampling probability over the region array
      (zeros outside the region), one per non-empty region."""
    d = dict(sample)
    label_item = d[args.get("label", "label")]
    sids = d.get(args.get("sids", "sids"))
    sid = d.get(args.get("sid", "sid"))
    if sids is not None:
        sids = [int(s) for s in _plain(sids)]
        if sid is None or sid not in sids:
            sid = params.get("sid")
            if sid is None:
                raise ValueError("params['sid'] is required: MONAI draws R.choice(sids) here")
            sid = int(sid)
            if sid not in sids:
                raise ValueError(f"params sid {sid} is not in sids {sids}")
        elif params.get("sid") is not None and int(params["sid"]) != int(sid):
            raise ValueError("params sid contradicts the sample's valid sid (MONAI draws nothing here)")
        sid = int(sid)
    else:
        sid = None

    label = label_item.data
    dimensions = 3 if label.ndim > 3 else 2
    default = [-1] * (dimensions + 1)
    dims = dimensions
    if sid is not None and dimensions == 3:
        dims = 2
        label = label[0][sid][np.newaxis]
    label = (label > 0.5).astype(np.float32)
    if dims == 2:
        blobs, _ = ndi.label(label.astype(int), structure=_full_structure(label.ndim))
    else:
        blobs = label
    if np.max(blobs) <= 0:
        raise AssertionError("Not a valid Label")

    seeds = list(params.get("seeds", []))
    pos = []
    out_probs = {}
    n_regions = 1 if dims == 3 else int(args.get("connected_regions", 5))
    for k in range(n_regions):
        ridx = k + 1
        region = label
        if dims == 2:
            region = (blobs == ridx).astype(np.float32)
            if np.sum(region) == 0:
                pos.append(list(default))
                continue
        if k >= len(seeds):
            raise ValueError(f"params['seeds'] needs an entry for region {k}")
        g, pmap = _sample_region(region, seeds[k], f"region {k}")
        out_probs[f"probability_{k}"] = pmap
        if dimensions == 2 or dims == 3:
            pos.append(g)
        else:
            pos.append([g[0], sid, g[-2], g[-1]])
    guidance = np.asarray([pos, [default] * len(pos)]).astype(int).tolist()
    d[args.get("guidance", "guidance")] = _dump(guidance)
    if params.get("with_probability"):
        for name, pmap in out_probs.items():
            d[name] = _prob_item(label_item, pmap)
    return d


@_register("AddGuidanceSignald")
def add_guidance_signal(sample, args, params):
    """AddGuidanceSignald(image="image", guidance="guidance", sigma=2, number_intensity_ch=1). No params.

    image [C, *spatial] (dimensions = 3 if image has > 3 axes else 2). guidance: JSON string / list / ndarray,
    [G][N][point]. One float32 signal channel per guidance group i: every point with any negative entry is
    skipped; the last 3 (3-D) / 2 (2-D) entries are int()-truncated and clamped to [0, size-1] and set to 1.0.
    If the channel has a point it is filtered with MONAI GaussianFilter(spatial_dims, sigma) (erf kernel,
    truncated=4.0, not normalised, separable zero-padded "same" conv, float32) and min-max normalised in float32
    ((x - min) / (max - min); NaN if constant, as MONAI). Output image = concatenate([image[:number_intensity_ch],
    signal]) as MONAI's numpy concat: dtype = numpy result_type(image dtype, float32) (float32 for float32/16-bit
    ints, float64 for float64/int32/int64 images). The affine is kept (MONAI returns a plain ndarray)."""
    _no_batched(args)
    d = dict(sample)
    key = args.get("image", "image")
    item = d[key]
    img = item.data
    guidance = _load_guidance(d[args.get("guidance", "guidance")])
    dimensions = 3 if img.ndim > 3 else 2
    sshape = img.shape[-dimensions:]
    signal = np.zeros((len(guidance),) + tuple(sshape), dtype=np.float32)
    sigma = args.get("sigma", 2)
    for i, g_i in enumerate(guidance):
        for point in g_i:
            if np.any(np.asarray(point) < 0):
                continue
            coords = [max(0, min(int(point[j - dimensions]), sshape[j] - 1)) for j in range(dimensions)]
            signal[(i,) + tuple(coords)] = 1.0
        if np.max(signal[i]) > 0:
            t = torch.tensor(signal[i]).unsqueeze(0).unsqueeze(0)
            sig = S.gaussian_filter(t, sigma, truncated=4.0)[0, 0].numpy().astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                signal[i] = (sig - np.min(sig)) / (np.max(sig) - np.min(sig))
    nch = int(args.get("number_intensity_ch", 1))
    out_dtype = np.result_type(np.dtype(item.dtype), np.float32)
    out = np.concatenate([img[0:nch].astype(out_dtype), signal.astype(out_dtype)], axis=0)
    d[key] = _new(item, out.astype(np.float64), dtype=out_dtype.name)
    return d


@_register("FindDiscrepancyRegionsd")
def find_discrepancy_regions(sample, args, params):
    """FindDiscrepancyRegionsd(label="label", pred="pred", discrepancy="discrepancy"). No params.

    l = label > 0.5, p = pred > 0.5 (float32); pos = (l - p > 0), neg = (l - p < 0) as float32. Output: one Item
    (label's affine, dtype float32) with data concatenate([pos, neg], axis=0), i.e. [2C, *spatial]
    (MONAI: the Python list [pos, neg])."""
    _no_batched(args)
    d = dict(sample)
    label = d[args.get("label", "label")]
    pred = d[args.get("pred", "pred")]
    lab = (label.data > 0.5).astype(np.float32)
    prd = (pred.data > 0.5).astype(np.float32)
    disp = lab - prd
    pos = (disp > 0).astype(np.float32)
    neg = (disp < 0).astype(np.float32)
    d[args.get("discrepancy", "discrepancy")] = _new(label, np.concatenate([pos, neg], 0).astype(np.float64),
                                                     dtype="float32")
    return d


@_register("AddRandomGuidanced")
def add_random_guidance(sample, args, params):
    """AddRandomGuidanced(guidance="guidance", discrepancy="discrepancy", probability="probability").

    params: {"will_interact": bool, "seed": flat index | null, "with_probability": bool}. will_interact is MONAI's
    R.choice([True, False], p=[prob, 1 - prob]); when omitted it is allowed only for prob 1 (True) or 0 (False).
    discrepancy: the Item written by FindDiscrepancyRegionsd; channels [:C/2] = pos, [C/2:] = neg, each keeps its
    channel axis (shape (1, D, H, W) for a one-channel label). If will_interact: correct_pos = sum(pos) >=
    sum(neg); if correct_pos and sum(pos) > 0 a point is drawn in pos (params["seed"] = flat index into the pos
    array), appended to guidance[0] with [-1]*len(point) appended to guidance[1]; elif not correct_pos and
    sum(neg) > 0 the same in neg with the roles swapped. A point is g = unravel_index(seed, (1, D, H, W)) with
    g[0] = chessboard distance at the seed (as AddInitialSeedPointd). Output guidance
    json.dumps(np.asarray(guidance, dtype=int).tolist()). with_probability adds an Item ``probability_0`` with the
    normalised sampling map (not ``probability``: that key holds the input click probability)."""
    _no_batched(args)
    d = dict(sample)
    gkey = args.get("guidance", "guidance")
    guidance = _load_guidance(d[gkey])
    disc_item = d[args.get("discrepancy", "discrepancy")]
    prob = float(d[args.get("probability", "probability")])
    will = params.get("will_interact")
    if will is None:
        if prob == 1.0:
            will = True
        elif prob == 0.0:
            will = False
        else:
            raise ValueError("params['will_interact'] is required when 0 < probability < 1")
    elif (will and prob <= 0.0) or (not will and prob >= 1.0):
        raise ValueError(f"will_interact={will} is impossible with probability {prob}")
    disc = np.asarray(disc_item.data, dtype=np.float32)
    if disc.shape[0] % 2:
        raise ValueError("discrepancy Item must have an even number of channels ([pos, neg] concatenated)")
    half = disc.shape[0] // 2
    pos_d, neg_d = disc[:half], disc[half:]
    pos = neg = None
    pmap = None
    if will:
        can_pos = np.sum(pos_d) > 0
        can_neg = np.sum(neg_d) > 0
        correct_pos = np.sum(pos_d) >= np.sum(neg_d)
        if correct_pos and can_pos:
            pos, pmap = _sample_region(pos_d, params.get("seed"), "positive discrepancy")
        elif not correct_pos and can_neg:
            neg, pmap = _sample_region(neg_d, params.get("seed"), "negative discrepancy")
    if pos:
        guidance[0].append(pos)
        guidance[1].append([-1] * len(pos))
    if neg:
        guidance[0].append([-1] * len(neg))
        guidance[1].append(neg)
    d[gkey] = _dump(np.asarray(guidance, dtype=int).tolist())
    if params.get("with_probability") and pmap is not None:
        d["probability_0"] = _prob_item(disc_item, pmap)
    return d


# ----------------------------------------------------------------------------------------------------------------
# cropping around foreground / guidance
# ----------------------------------------------------------------------------------------------------------------
def _spatial_crop_slices(roi_center=None, roi_size=None, roi_start=None, roi_end=None):
    """MONAI SpatialCrop.compute_slices (int16 tensors): centre/size -> start = max(c - size//2, 0),
    end = max(start + size, start); start/end -> start = max(start, 0), end = max(end, start)."""
    if roi_center is not None and roi_size is not None:
        c = np.asarray(roi_center, dtype=np.int64)
        s = np.asarray(roi_size, dtype=np.int64)
        start = np.maximum(c - np.floor_divide(s, 2), 0)
        end = np.maximum(start + s, start)
    else:
        start = np.maximum(np.asarray(roi_start, dtype=np.int64), 0)
        end = np.maximum(np.asarray(roi_end, dtype=np.int64), start)
    return [int(v) for v in start], [int(v) for v in end]


def _record_key(keys, args):
    """Which key's shapes become the top-level foreground_original/cropped_shape values (MONAI stores them per
    key in <key>_meta_dict): args["record_key"] (twin-only) or the first key present."""
    rk = args.get("record_key")
    if rk is not None:
        if rk not in keys:
            raise KeyError(f"record_key {rk!r} is not among the processed keys")
        return rk
    return keys[0] if keys else None


def _meta_names(args):
    return (args.get("start_coord_key", "foreground_start_coord"), args.get("end_coord_key", "foreground_end_coord"),
            args.get("original_shape_key", "foreground_original_shape"),
            args.get("cropped_shape_key", "foreground_cropped_shape"))


@_register("SpatialCropForegroundd")
def spatial_crop_foreground(sample, args, params):
    """SpatialCropForegroundd(keys, source_key, spatial_size, select_fn=is_positive, channel_indices=None, margin=0,
    allow_smaller=True, meta_keys=None, meta_key_postfix="meta_dict", start_coord_key="foreground_start_coord",
    end_coord_key="foreground_end_coord", original_shape_key="foreground_original_shape",
    cropped_shape_key="foreground_cropped_shape", allow_missing_keys=False). No params.
    args.select_fn as in spatial.py's CropForegroundd twin (None -> x > 0, number t -> x > t, dict forms).

    box = generate_spatial_bounding_box(source, select_fn, channel_indices, margin, allow_smaller);
    centre = int(mean(start, end)) per axis; size = end - start. If size < spatial_size in EVERY axis: SpatialCrop
    (roi_center=centre, roi_size=spatial_size) and the box becomes that crop's slice starts/stops (start clipped at
    0, stop NOT clipped to the image); otherwise SpatialCrop(roi_start, roi_end) and the recorded box stays the
    generated one. No padding. Each key is cropped (affine A @ T(start), dtype kept). Top-level JSON values (MONAI:
    per-key meta dict): start_coord_key, end_coord_key (lists), original_shape_key = full shape incl. channel
    before the crop, cropped_shape_key = full shape after (taken from args["record_key"] or the first key)."""
    d = dict(sample)
    src = d[args["source_key"]]
    start, end = S.generate_spatial_bounding_box(src.data, S._select_fn(args.get("select_fn")),
                                                 args.get("channel_indices"), args.get("margin", 0),
                                                 bool(args.get("allow_smaller", True)))
    spatial_size = list(args["spatial_size"])
    center = [int(v) for v in np.mean([start, end], axis=0).astype(int)]
    cur = [int(v) for v in np.subtract(end, start).astype(int)]
    if np.all(np.less(cur, spatial_size)):
        start, end = _spatial_crop_slices(roi_center=center, roi_size=spatial_size)
        crop_st, crop_en = start, end
    else:
        crop_st, crop_en = _spatial_crop_slices(roi_start=start, roi_end=end)
    keys = _present(d, args)
    rk = _record_key(keys, args)
    sk, ek, ok, ck = _meta_names(args)
    for key in keys:
        orig_shape = list(d[key].data.shape)
        d[key], _ = S.crop_item(d[key], crop_st, crop_en)
        if key == rk:
            d[ok] = orig_shape
            d[ck] = list(d[key].data.shape)
    if keys:
        d[sk] = [int(v) for v in start]
        d[ek] = [int(v) for v in end]
    return d


@_register("SpatialCropGuidanced")
def spatial_crop_guidance(sample, args, params):
    """SpatialCropGuidanced(keys, guidance, spatial_size, margin=20, meta_keys=None, meta_key_postfix="meta_dict",
    start/end_coord_key, original/cropped_shape_key (defaults foreground_*), allow_missing_keys=False). No params.

    guidance (JSON string or list) = [pos, neg, ...] with points in spatial voxel coordinates (len = spatial rank
    of the images). Box over pos + neg points: start = max(min(p - margin), 0), end = min(size, max(p + margin + 1))
    per axis (size = the first present key's spatial shape). spatial_size = spatial_size[-rank:]; if shorter than
    the rank, it is prefixed with image_spatial_shape[1 : 1 + diff] (MONAI's indexing, i.e. it takes axis 1's
    size for a 3-D image with a 2-entry spatial_size). If box size < spatial_size in every axis: centre =
    int(mean(start, end)), for 3-D centre[0] = spatial_size[0] // 2, SpatialCrop(roi_center, roi_size); else
    SpatialCrop(roi_start=start, roi_end=end). The recorded box is the crop's slice start/stop (stop may exceed
    the image). Every key must have the same spatial shape; each is cropped (affine A @ T(start)). Outputs:
    guidance = json.dumps([pos - start, neg - start]) (empty lists stay empty; any slice entry is dropped as in
    MONAI), and top-level JSON values start/end coords and original/cropped full shapes (args["record_key"] or
    the first key)."""
    d = dict(sample)
    keys = _present(d, args)
    if not keys:
        return d
    gkey = args["guidance"]
    guidance = _load_guidance(d[gkey])
    first = keys[0]
    shape = list(d[first].data.shape[1:])
    ndim = len(shape)
    margin = S.ensure_tuple_rep(args.get("margin", 20), ndim)
    if any(m < 0 for m in margin):
        raise ValueError("margin value should not be negative number.")
    points = np.array(guidance[0] + guidance[1])
    box_start, box_end = [0] * ndim, [0] * ndim
    for di in range(ndim):
        dt = points[..., di]
        box_start[di] = max(min(dt - margin[di]), 0)
        box_end[di] = min(shape[di], max(dt + margin[di] + 1))
    center = [int(v) for v in np.mean([box_start, box_end], axis=0).astype(int)]
    box_size = [int(v) for v in np.subtract(box_end, box_start).astype(int)]
    spatial_size = list(args["spatial_size"])[-len(box_size):]
    if len(spatial_size) < len(box_size):
        diff = len(box_size) - len(spatial_size)
        spatial_size = list(shape[1:1 + diff]) + spatial_size
    if np.all(np.less(box_size, spatial_size)):
        if len(center) == 3:
            center[0] = spatial_size[0] // 2
        st, en = _spatial_crop_slices(roi_center=center, roi_size=spatial_size)
    else:
        st, en = _spatial_crop_slices(roi_start=box_start, roi_end=box_end)
    rk = _record_key(keys, args)
    sk, ek, ok, ck = _meta_names(args)
    for key in keys:
        if list(d[key].data.shape[1:]) != shape:
            raise RuntimeError("All the image specified in keys should have same spatial shape")
        orig_shape = list(d[key].data.shape)
        d[key], _ = S.crop_item(d[key], st, en)
        if key == rk:
            d[ok] = orig_shape
            d[ck] = list(d[key].data.shape)
    d[sk] = list(st)
    d[ek] = list(en)
    pos_c, neg_c = guidance[0], guidance[1]
    pos = np.subtract(pos_c, st).tolist() if len(pos_c) else []
    neg = np.subtract(neg_c, st).tolist() if len(neg_c) else []
    d[gkey] = _dump([pos, neg])
    return d


# ----------------------------------------------------------------------------------------------------------------
# inference transforms
# ----------------------------------------------------------------------------------------------------------------
@_register("AddGuidanceFromPointsd")
def add_guidance_from_points(sample, args, params):
    """AddGuidanceFromPointsd(ref_image, guidance="guidance", foreground="foreground", background="background",
    axis=0, depth_first=True, spatial_dims=2, slice_key="slice", meta_keys=None, meta_key_postfix="meta_dict").
    No params. (MONAI 1.4 spells the rank ``spatial_dims``; the twin also accepts ``dimensions``.)

    Inputs: foreground/background = lists of clicks in the ORIGINAL (as-loaded, H, W, D) voxel indices; the
    original shape is the JSON value ``original_shape`` if present, else ``spatial_shape`` (MONAI:
    <ref_image>_meta_dict["spatial_shape"]; RuntimeError if neither). MONAI's current shape is the ref array's
    WHOLE shape; in MONAI's deepgrow pipelines that array has no channel axis (e.g. (D, H, W) after
    AsChannelFirstd + Spacingd), so the twin reads it as the Item's SPATIAL shape data.shape[1:] (an Item [1, D, H,
    W] stands for MONAI's (D, H, W) array). depth_first (requires axis == 0): original shape and every click are
    rolled by 1 (H, W, D -> D, H, W). factor = current / original. Clicks are int-truncated first.
    spatial_dims 3: guidance = [int(pos * factor), int(neg * factor)]. spatial_dims 2: slice_idx = the smallest
    value of clicks[:, axis] over pos + neg (or the sample's slice_key value, which must be among them); pos/neg
    keep only clicks on that slice, scaled by factor, with coordinate 0 dropped; guidance = [pos, neg, slice_idx].
    Output guidance as a JSON string (MONAI: a list)."""
    d = dict(sample)
    ref = d[args["ref_image"]]
    if "original_shape" in d:
        original = np.asarray(_plain(d["original_shape"]), dtype=np.float64)
    elif "spatial_shape" in d:
        original = np.asarray(_plain(d["spatial_shape"]), dtype=np.float64)
    else:
        raise RuntimeError('Missing "spatial_shape" in meta_dict!')
    current = list(ref.data.shape[1:])
    depth_first = bool(args.get("depth_first", True))
    axis = int(args.get("axis", 0))
    dims = int(args.get("spatial_dims", args.get("dimensions", 2)))
    if depth_first:
        if axis != 0:
            raise RuntimeError("Depth first means the depth axis should be 0.")
        original = np.roll(original, 1)
    factor = np.array(current) / original
    clicks_all = []
    for key in (args.get("foreground", "foreground"), args.get("background", "background")):
        clicks = list(np.array(_plain(d[key]), dtype=int))
        if depth_first:
            clicks = [list(np.roll(c, 1)) for c in clicks]
        clicks_all.append(clicks)
    pos_c, neg_c = clicks_all
    pos = neg = []
    if dims == 2:
        points = list(pos_c) + list(neg_c)
        slices = list(np.unique(np.array(points)[:, axis]))
        slice_num = d.get(args.get("slice_key", "slice"))
        slice_idx = slices[0] if slice_num is None else next(x for x in slices if x == slice_num)
        if len(pos_c):
            pc = np.array(pos_c)
            pos = (pc[np.where(pc[:, axis] == slice_idx)] * factor)[:, 1:].astype(int).tolist()
        if len(neg_c):
            nc = np.array(neg_c)
            neg = (nc[np.where(nc[:, axis] == slice_idx)] * factor)[:, 1:].astype(int).tolist()
        guidance = [pos, neg, int(slice_idx)]
    else:
        if len(pos_c):
            pos = np.multiply(pos_c, factor).astype(int).tolist()
        if len(neg_c):
            neg = np.multiply(neg_c, factor).astype(int).tolist()
        guidance = [pos, neg]
    d[args.get("guidance", "guidance")] = _dump(guidance)
    return d


@_register("Fetch2DSliced")
def fetch_2d_sliced(sample, args, params):
    """Fetch2DSliced(keys, guidance="guidance", axis=0, meta_keys=None, meta_key_postfix="meta_dict",
    allow_missing_keys=False). No params.

    guidance = [pos, neg, slice_idx, ...] (RuntimeError when it has fewer than 3 entries). MONAI indexes its
    channel-less array with slice_idx at position ``axis`` and full slices elsewhere; an Item [1, D, H, W] stands
    for that (D, H, W) array, so ``axis`` counts the Item's spatial axes and the result is the Item [1, ...] of
    the remaining two. MONAI stores the index tuple in <key>_meta_dict["slice_idx"]; here the top-level JSON
    value ``slice_idx`` is the slice number (RestoreLabeld reads [0] of MONAI's tuple, the same number)."""
    d = dict(sample)
    guidance = _load_guidance(d[args.get("guidance", "guidance")])
    if len(guidance) < 3:
        raise RuntimeError("Guidance does not container slice_idx!")
    slice_idx = int(guidance[2])
    axis = int(args.get("axis", 0))
    for key in _present(d, args):
        item = d[key]
        arr = item.data[0]
        idx = tuple(slice_idx if i == axis else slice(0, n) for i, n in enumerate(arr.shape))
        d[key] = _new(item, np.asarray(arr[idx])[np.newaxis])
    d["slice_idx"] = slice_idx
    return d


@_register("ResizeGuidanced")
def resize_guidance(sample, args, params):
    """ResizeGuidanced(guidance, ref_image, meta_keys=None, meta_key_postfix="meta_dict",
    cropped_shape_key="foreground_cropped_shape"). No params.

    factor = ref spatial shape / cropped_shape[1:], where cropped_shape is the top-level JSON value named by
    cropped_shape_key (full shape incl. channel, as SpatialCropGuidanced records it; MONAI reads it from
    <ref_image>_meta_dict). guidance [pos, neg, ...] -> json.dumps([int(pos * factor), int(neg * factor)])
    (truncation toward zero; empty lists stay empty)."""
    d = dict(sample)
    gkey = args["guidance"]
    guidance = _load_guidance(d[gkey])
    cur = list(d[args["ref_image"]].data.shape[1:])
    cropped = list(_plain(d[args.get("cropped_shape_key", "foreground_cropped_shape")]))[1:]
    factor = np.divide(cur, cropped)
    pos_c, neg_c = guidance[0], guidance[1]
    pos = np.multiply(pos_c, factor).astype(int).tolist() if len(pos_c) else []
    neg = np.multiply(neg_c, factor).astype(int).tolist() if len(neg_c) else []
    d[gkey] = _dump([pos, neg])
    return d


def _resize_f32(data, size, mode, align_corners):
    """MONAI Resize (size_mode="all", anti_aliasing=False): float32 torch interpolate; unchanged size -> no-op."""
    size = [int(s) for s in size]
    if list(data.shape[1:]) == size:
        return S._round_to(data, "float32")
    return S.interpolate(data, size, mode, align_corners, torch.float32)


@_register("RestoreLabeld")
def restore_label(sample, args, params):
    """RestoreLabeld(keys, ref_image, slice_only=False, mode="nearest", align_corners=None, meta_keys=None,
    meta_key_postfix="meta_dict", start/end_coord_key, original/cropped_shape_key (foreground_* defaults),
    allow_missing_keys=False). No params.

    Reads top-level JSON values (MONAI: <ref_image>_meta_dict entries): cropped_shape_key and original_shape_key
    (full shapes incl. channel), start_coord_key / end_coord_key, ``spatial_shape`` (as loaded, H, W, D; rolled by
    1 to D, H, W), optional ``slice_idx`` (int, or a list whose [0] is used - MONAI stores Fetch2DSliced's index
    tuple) and optional ``original_affine`` (4x4). Per key (an Item [C, ...]):
      1. if the Item's full shape != cropped_shape: Resize to cropped_shape[1:] (mode, align_corners; float32);
      2. result = zeros(original_shape, float32); result[:, start:end per spatial axis] = image
         (min(len(start), rank) axes; numpy slicing clips);
      3. spatial_size = roll(spatial_shape, 1)[-rank:]; if result's spatial shape differs: Resize to it;
      4. slice_idx missing or slice_only: final = result if result.ndim <= 3 else result[0];
         else final = zeros(roll(spatial_shape, 1)) (float64) with final[slice_idx] = result.
    The output Item holds final with a leading length-1 axis added wherever MONAI's array has none (result[0] and
    the slice-filled volume), i.e. data = result for result.ndim <= 3; dtype float32 (float64 for the slice path);
    affine = original_affine when given, else the input Item's (MONAI writes original_affine into the key's meta)."""
    d = dict(sample)
    keys = _present(d, args)
    n = len(_keys(args))
    modes = dict(zip(_keys(args), _rep(args.get("mode", "nearest"), n)))
    acs = dict(zip(_keys(args), _rep(args.get("align_corners"), n)))
    sk, ek, ok, ck = _meta_names(args)
    cropped_shape = [int(v) for v in _plain(d[ck])]
    original_shape = [int(v) for v in _plain(d[ok])]
    box_start = [int(v) for v in _plain(d[sk])]
    box_end = [int(v) for v in _plain(d[ek])]
    spatial_shape = [int(v) for v in np.roll(np.asarray(_plain(d["spatial_shape"])), 1)]
    slice_idx = d.get("slice_idx")
    slice_only = bool(args.get("slice_only", False))
    for key in keys:
        item = d[key]
        image = item.data
        mode, ac = modes[key], acs[key]
        if list(image.shape) != cropped_shape:
            image = _resize_f32(image, cropped_shape[1:], mode, ac)
        result = np.zeros(original_shape, dtype=np.float32)
        sd = min(len(box_start), image.ndim - 1)
        sl = tuple([slice(None)] + [slice(s, e) for s, e in zip(box_start[:sd], box_end[:sd])])
        result[sl] = image
        cur = list(result.shape[1:])
        spatial_size = spatial_shape[-len(cur):]
        if cur != spatial_size:
            result = _resize_f32(result.astype(np.float64), spatial_size, mode, ac).astype(np.float32)
        if slice_idx is None or slice_only:
            data = result if result.ndim <= 3 else result[0][np.newaxis]
            dtype = "float32"
        else:
            si = slice_idx[0] if isinstance(slice_idx, (list, tuple)) else slice_idx
            final = np.zeros(tuple(spatial_shape))
            final[int(si)] = result
            data = final[np.newaxis]
            dtype = "float64"
        aff = np.asarray(d["original_affine"], dtype=np.float64) if "original_affine" in d else item.affine
        d[key] = _new(item, np.asarray(data, dtype=np.float64), affine=aff, dtype=dtype)
    return d



# ----------------------------------------------------------------------------------------------------------------
# DEXTR3D: extreme points (monai.transforms.AddExtremePointsChanneld, get_extreme_points, extreme_points_to_image)
# ----------------------------------------------------------------------------------------------------------------
def _extreme_points(label, background, pert, choices, draws):
    """get_extreme_points on a spatial array. For axis i the min, then the max: among the foreground voxels
    (numpy where order) whose coordinate i equals it, MONAI picks rand_state.choice(ties); here ``choices`` gives
    the position within the ties (default 0). Each coordinate then becomes int(c + 2.0 * pert * u), u = MONAI's
    rand_state.rand() (``draws``, default 0), clamped to [0, size - 1]."""
    idx = np.where(label != background)
    if idx[0].size == 0:
        raise ValueError("get_extreme_points: no foreground object in mask!")
    points = []
    n = 0
    for i in range(label.ndim):
        for val in (idx[i].min(), idx[i].max()):
            ties = np.where(idx[i] == val)[0]
            pick = ties[choices[n] if choices else 0]
            pt = []
            for j in range(label.ndim):
                u = draws[n][j] if draws else 0.0
                v = int(idx[j][pick] + 2.0 * pert * u)
                pt.append(min(max(v, 0), label.shape[j] - 1))
            points.append(tuple(pt))
            n += 1
    return points


def _points_image(points, spatial, sigma, rescale_min, rescale_max):
    img = torch.zeros(tuple(spatial), dtype=torch.float)
    for p in points:
        img[tuple(p)] = 1.0
    img = S.gaussian_filter(img[None, None], sigma, truncated=4.0)[0].detach()
    lo, hi = img.min(), img.max()
    img = (img - lo) / (hi - lo)
    return img * (rescale_max - rescale_min) + rescale_min


@_register("AddExtremePointsChanneld")
def add_extreme_points_channel(sample, args, params):
    """AddExtremePointsChanneld(keys, label_key, background=0, pert=0.0, sigma=3.0, rescale_min=-1.0,
    rescale_max=1.0). The label must have one channel; the points come from label[0]; each key's image gets the
    points image ([1, *spatial], dtype of the image) concatenated as its last channel. params: optional
    ``choices`` (tie positions) and ``draws`` (per point, per axis uniform values), see _extreme_points.
    Barton's ``points_key`` (guidance [[points...]]) is accepted: the points are its first group, int()."""
    d = dict(sample)
    sigma = float(args.get("sigma", 3.0))
    rmin, rmax = float(args.get("rescale_min", -1.0)), float(args.get("rescale_max", 1.0))
    if args.get("points_key"):
        points = [tuple(int(c) for c in p) for p in _load_guidance(d[args["points_key"]])[0]]
        spatial = None
    else:
        label = d[args["label_key"]].data
        if label.shape[0] != 1:
            raise ValueError("Only supports single channel labels!")
        points = _extreme_points(label[0], args.get("background", 0), float(args.get("pert", 0.0)),
                                 params.get("choices"), params.get("draws"))
        spatial = label.shape[1:]
    for key in _keys(args):
        item = d[key]
        sp = spatial if spatial is not None else item.data.shape[1:]
        pts = [tuple(min(max(c, 0), s - 1) for c, s in zip(p, sp)) for p in points]
        ch = _points_image(pts, sp, sigma, rmin, rmax).numpy().astype(np.dtype(item.dtype))
        out = np.concatenate([item.data.astype(np.dtype(item.dtype)), ch], axis=0)
        d[key] = _new(item, out.astype(np.float64))
    d["extreme_points"] = json.dumps([list(p) for p in points])
    return d
