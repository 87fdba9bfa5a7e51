"""NumPy/PyTorch twin of MONAI 1.3/1.4 spatial dictionary transforms (see docs/monai-semantics-spatial.md).

Every entry of ``TRANSFORMS`` is ``fn(sample, args, params)``:

* ``sample``: key -> ``Item`` (``.data`` float64 ``[C, *spatial]``, ``.affine`` 4x4, ``.dtype`` str) or a plain
  JSON value;
* ``args``: the MONAI dictionary-transform constructor arguments as a config gives them;
* ``params``: explicit values for what MONAI draws at random (documented per function).

It returns a new dict (or a list of dicts for multi-sample transforms). Output ``Item`` data holds the values
MONAI's tensor would hold (rounded to float32 when MONAI outputs float32) and ``dtype`` names MONAI's output dtype.
torch is used where MONAI's numbers come from torch kernels (grid_sample, affine_grid, interpolate, conv).
Deterministic; torch runs single-threaded.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

AFFINE_TOL = 1e-3

# When not None, transforms append inversion records here: {key: [record, ...]} (used by invert()).
_TRACE = None


# ----------------------------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------------------------
def _is_seq(x):
    return isinstance(x, (list, tuple, np.ndarray))


def ensure_tuple(x):
    if x is None:
        return ()
    if _is_seq(x):
        return tuple(x)
    return (x,)


def ensure_tuple_rep(x, n):
    """MONAI ensure_tuple_rep: scalar -> n copies; sequence of length n -> itself; otherwise error."""
    if not _is_seq(x):
        return (x,) * n
    if len(x) == n:
        return tuple(x)
    raise ValueError(f"sequence must have length {n}, got {len(x)}.")


def fall_back_tuple(user, default, func=lambda v: v is not None and v > 0):
    """MONAI fall_back_tuple: entries failing `func` (default: None or non-positive) take the default's value."""
    user = ensure_tuple_rep(user, len(default))
    return tuple(u if func(u) else d for u, d in zip(user, default))


def _new(proto, data, affine, dtype):
    return type(proto)(data, affine, dtype)


def _round_to(data, dtype):
    """Values as stored by a tensor of `dtype` (float32 rounding; ints are already exact)."""
    if dtype == "float32":
        return np.asarray(data, dtype=np.float32).astype(np.float64)
    if dtype == "float16":
        return np.asarray(data, dtype=np.float16).astype(np.float64)
    return np.asarray(data, dtype=np.float64)


def _f32_item(proto, data, affine):
    return _new(proto, _round_to(data, "float32"), affine, "float32")


def _torch_dtype(name, default):
    if name is None:
        return default
    if isinstance(name, torch.dtype):
        return name
    s = str(name).replace("torch.", "").replace("np.", "").replace("numpy.", "")
    if s in ("float", "double"):
        s = "float64" if s == "double" else "float32"
    return {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}[s]


def key_iter(sample, args, per_key=None):
    """Yield (key, {name: per-key value}) like MONAI's MapTransform.key_iterator with ensure_tuple_rep'd args."""
    keys = list(ensure_tuple(args["keys"]))
    allow_missing = bool(args.get("allow_missing_keys", False))
    per_key = per_key or {}
    reps = {name: ensure_tuple_rep(args.get(name, default), len(keys)) for name, default in per_key.items()}
    for i, key in enumerate(keys):
        if key in sample:
            yield key, {name: reps[name][i] for name in reps}
        elif not allow_missing:
            raise KeyError(f"Key `{key}` of transform was missing in the data and allow_missing_keys==False.")


def _trace(key, record):
    if _TRACE is not None:
        _TRACE.setdefault(key, []).append(record)


def to_affine_nd(r, affine):
    """MONAI data.utils.to_affine_nd: (r+1)x(r+1) with the top-left block and translation copied."""
    a = np.asarray(affine, dtype=np.float64)
    if np.ndim(r) == 0:
        new = np.eye(int(r) + 1)
    else:
        new = np.array(r, dtype=np.float64, copy=True)
    d = max(min(len(new) - 1, len(a) - 1), 1)
    new[:d, :d] = a[:d, :d]
    if d > 1:
        new[:d, -1] = a[:d, -1]
    return new


def _compose(affine4, x):
    """A_new = A @ to_affine_nd(3, X) (TraceableTransform.track_transform_meta)."""
    a = np.asarray(affine4, dtype=np.float64)
    return a @ to_affine_nd(len(a) - 1, x)


def translate(r, shift):
    m = np.eye(r + 1)
    for i, s in enumerate(list(shift)[:r]):
        m[i, r] = s
    return m


def create_rotate_np(r, angles):
    """MONAI transforms.utils.create_rotate (numpy backend)."""
    angles = ensure_tuple(angles)
    if r == 2:
        s, c = np.sin(angles[0]), np.cos(angles[0])
        out = np.eye(3)
        out[0, 0], out[0, 1], out[1, 0], out[1, 1] = c, -s, s, c
        return out
    aff = np.eye(4)
    s, c = np.sin(angles[0]), np.cos(angles[0])
    aff[1, 1], aff[1, 2], aff[2, 1], aff[2, 2] = c, -s, s, c
    if len(angles) >= 2:
        s, c = np.sin(angles[1]), np.cos(angles[1])
        m = np.eye(4)
        m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
        aff = aff @ m
    if len(angles) >= 3:
        s, c = np.sin(angles[2]), np.cos(angles[2])
        m = np.eye(4)
        m[0, 0], m[0, 1], m[1, 0], m[1, 1] = c, -s, s, c
        aff = aff @ m
    return aff


def scale_affine(spatial_size, new_spatial_size):
    """MONAI transforms.utils.scale_affine (centered)."""
    r = max(len(new_spatial_size), len(spatial_size))
    if list(spatial_size) == list(new_spatial_size):
        return np.eye(r + 1)
    s = [float(o) / float(max(n, 1)) for o, n in zip(spatial_size, new_spatial_size)]
    m = np.diag(list(s) + [1.0])
    m[:r, -1] = (np.asarray(s) - 1) / 2.0
    return m


def affine_to_spacing(affine, r):
    a = np.asarray(affine, dtype=np.float64)[:r, :r]
    sp = np.sqrt(np.sum(a * a, axis=0))
    sp[sp == 0] = 1.0
    return sp


def zoom_affine(affine, scale, diagonal=True):
    """MONAI data.utils.zoom_affine."""
    affine = np.array(affine, dtype=np.float64, copy=True)
    scale_np = np.array(scale, dtype=np.float64, copy=True)
    d = len(affine) - 1
    norm = affine_to_spacing(affine, d)
    if len(scale_np) < d:
        scale_np = np.append(scale_np, norm[len(scale_np):])
    scale_np = scale_np[:d]
    scale_np = np.array([s if s > 0 else n for s, n in zip(scale_np, norm)], dtype=np.float64)
    scale_np[scale_np == 0] = 1.0
    if diagonal:
        return np.diag(np.append(scale_np, [1.0]))
    rzs = affine[:-1, :-1]
    zs = np.linalg.cholesky(rzs.T @ rzs).T
    rotation = rzs @ np.linalg.inv(zs)
    s = np.sign(np.diag(zs)) * np.abs(scale_np)
    new_affine = np.eye(len(affine))
    new_affine[:-1, :-1] = rotation @ np.diag(s)
    return new_affine


def compute_shape_offset(spatial_shape, in_affine, out_affine, scale_extent=False):
    """MONAI data.utils.compute_shape_offset (1.x)."""
    shape = np.array(spatial_shape, copy=True, dtype=float)
    sr = len(shape)
    in_a = to_affine_nd(sr, in_affine)
    out_a = to_affine_nd(sr, out_affine)
    in_coords = [(-0.5, dim - 0.5) if scale_extent else (0.0, dim - 1.0) for dim in shape]
    corners = np.asarray(np.meshgrid(*in_coords, indexing="ij")).reshape((len(shape), -1))
    corners = np.concatenate((corners, np.ones_like(corners[:1])))
    corners_out = np.linalg.solve(out_a, in_a) @ corners
    corners = in_a @ corners
    all_dist = corners_out[:-1].copy()
    corners_out = corners_out[:-1] / corners_out[-1]
    ptp = np.max(corners_out, 1) - np.min(corners_out, 1)
    out_shape = np.round(ptp) if scale_extent else np.round(ptp + 1.0)
    offset = None
    for i in range(corners.shape[1]):
        min_corner = np.min(all_dist - all_dist[:, i:i + 1], 1)
        if np.allclose(min_corner, 0.0, rtol=AFFINE_TOL):
            offset = corners[:-1, i]
            break
    if offset is None:
        offset = np.min(corners, 1)
    return out_shape.astype(int), offset


# ----------------------------------------------------------------------------------------------------------------
# nibabel orientation helpers (re-implemented; cross-checked against nibabel in the self-tests)
# ----------------------------------------------------------------------------------------------------------------
_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def io_orientation(affine):
    affine = np.asarray(affine, dtype=np.float64)
    q, p = affine.shape[0] - 1, affine.shape[1] - 1
    rzs = affine[:q, :p]
    zooms = np.sqrt(np.sum(rzs * rzs, axis=0))
    zooms[zooms == 0] = 1
    rs = rzs / zooms
    u, s, vt = np.linalg.svd(rs, full_matrices=False)
    tol = s.max() * max(rs.shape) * np.finfo(s.dtype).eps
    keep = s > tol
    r = np.dot(u[:, keep], vt[keep])
    ornt = np.ones((p, 2)) * np.nan
    for in_ax in range(p):
        col = r[:, in_ax]
        if not np.allclose(col, 0):
            out_ax = int(np.argmax(np.abs(col)))
            ornt[in_ax, 0] = out_ax
            ornt[in_ax, 1] = -1 if col[out_ax] < 0 else 1
            r[out_ax, :] = 0
    return ornt


def axcodes2ornt(axcodes, labels=_LABELS):
    ornt = np.ones((len(axcodes), 2)) * np.nan
    for code_idx, code in enumerate(axcodes):
        for label_idx, codes in enumerate(labels):
            if code == codes[0]:
                ornt[code_idx] = [label_idx, -1]
            elif code == codes[1]:
                ornt[code_idx] = [label_idx, 1]
    return ornt


def ornt_transform(start_ornt, end_ornt):
    start_ornt = np.asarray(start_ornt)
    end_ornt = np.asarray(end_ornt)
    result = np.empty_like(start_ornt)
    for end_in_idx, (end_out_idx, end_flip) in enumerate(end_ornt):
        for start_in_idx, (start_out_idx, start_flip) in enumerate(start_ornt):
            if end_out_idx == start_out_idx:
                result[start_in_idx, :] = [end_in_idx, 1 if start_flip == end_flip else -1]
                break
        else:
            raise ValueError(f"Unable to convert from {start_ornt} to {end_ornt}")
    return result


def inv_ornt_aff(ornt, shape):
    ornt = np.asarray(ornt)
    p = ornt.shape[0]
    shape = np.array(shape)[:p]
    axis_transpose = [int(v) for v in ornt[:, 0]]
    undo_reorder = np.eye(p + 1)[axis_transpose + [p], :]
    undo_flip = np.diag(list(ornt[:, 1]) + [1.0])
    center_trans = -(shape - 1) / 2.0
    undo_flip[:p, p] = (ornt[:, 1] * center_trans) - center_trans
    return np.dot(undo_flip, undo_reorder)


def aff2axcodes(aff, labels=_LABELS):
    ornt = io_orientation(aff)
    return "".join(labels[int(ax)][0 if flip == -1 else 1] for ax, flip in ornt)


# ----------------------------------------------------------------------------------------------------------------
# resampling kernels (MONAI AffineTransform / Resample / interpolate)
# ----------------------------------------------------------------------------------------------------------------
def _resolve_grid_modes(mode, padding_mode):
    if isinstance(mode, str) and mode.isdigit():
        mode = int(mode)
    if isinstance(mode, int):
        pm = {"zeros": "constant", "border": "nearest", "reflection": "reflect"}.get(padding_mode, padding_mode)
        return "numpy", mode, pm
    m = {"linear": "bilinear", "trilinear": "bilinear", "nearest-exact": "nearest", "area": "nearest"}.get(mode, mode)
    pm = {"constant": "zeros", "grid-constant": "zeros", "nearest": "border", "reflect": "reflection",
          "wrap": "reflection", "grid-wrap": "reflection", "grid-mirror": "reflection"}.get(padding_mode, padding_mode)
    return "torch", m, pm


def _resolve_interp_mode(mode, nd):
    if isinstance(mode, str) and mode.isdigit():
        mode = int(mode)
    if isinstance(mode, int):
        mode = {0: "nearest-exact", 1: "linear", 3: "bicubic"}[mode]
    if mode in ("linear", "bilinear", "trilinear"):
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    return mode


def normalize_transform(shape, dtype, align_corners, zero_centered=False):
    """MONAI networks.utils.normalize_transform (float64 maths, then cast to dtype)."""
    shape_t = torch.tensor([float(s) for s in shape], dtype=torch.float64)
    norm = shape_t.clone()
    if align_corners:
        norm[norm <= 1.0] = 2.0
        norm = 2.0 / (norm if zero_centered else norm - 1.0)
        norm = torch.diag(torch.cat((norm, torch.ones((1,), dtype=torch.float64))))
        if not zero_centered:
            norm[:-1, -1] = -1.0
    else:
        norm[norm <= 0.0] = 2.0
        norm = 2.0 / (norm - 1.0 if zero_centered else norm)
        norm = torch.diag(torch.cat((norm, torch.ones((1,), dtype=torch.float64))))
        norm[:-1, -1] = 1.0 / shape_t - (0.0 if zero_centered else 1.0)
    return norm.unsqueeze(0).to(dtype=dtype)


def affine_transform(data, mat, out_size, mode, padding_mode, align_corners, dtype):
    """MONAI AffineTransform(normalized=False, reverse_indexing=True): out[j] = in[mat @ j] via grid_sample."""
    _, m, p = _resolve_grid_modes(mode, padding_mode)
    align_corners = bool(align_corners)
    src = torch.as_tensor(np.asarray(data), dtype=dtype).unsqueeze(0)
    sr = src.dim() - 2
    theta = torch.as_tensor(np.asarray(mat, dtype=np.float64)).to(dtype)[None].clone()
    src_size = tuple(src.shape)
    dst_size = src_size[:2] + tuple(int(s) for s in out_size)
    theta = (normalize_transform(src_size[2:], theta.dtype, align_corners) @ theta
             @ torch.inverse(normalize_transform(dst_size[2:], theta.dtype, align_corners)))
    rev = torch.as_tensor(list(range(sr - 1, -1, -1)))
    theta[:, :sr] = theta[:, rev]
    theta[:, :, :sr] = theta[:, :, rev]
    grid = F.affine_grid(theta=theta[:, :sr], size=list(dst_size), align_corners=align_corners)
    out = F.grid_sample(src.contiguous(), grid, mode=m, padding_mode=p, align_corners=align_corners)
    return out[0].double().numpy()


def create_grid_t(spatial_size, dtype):
    """MONAI create_grid(backend='torch'): centred homogeneous grid [r+1, *size]."""
    ranges = [torch.linspace(-(d - 1.0) / 2.0, (d - 1.0) / 2.0, int(d), dtype=dtype) for d in spatial_size]
    coords = torch.meshgrid(*ranges, indexing="ij")
    return torch.stack([*coords, torch.ones_like(coords[0])])


def _affine_params_matrix(r, rotate=None, shear=None, translate_=None, scale=None):
    """AffineGrid matrix (torch float32): rotate @ shear @ translate @ scale, each only if non-empty."""
    aff = torch.eye(r + 1)
    if rotate is not None and _truthy(rotate):
        angles = ensure_tuple(rotate)
        sin = [torch.sin(torch.as_tensor(a, dtype=torch.float32)) for a in angles]
        cos = [torch.cos(torch.as_tensor(a, dtype=torch.float32)) for a in angles]
        if r == 2:
            rm = torch.eye(3)
            rm[0, 0], rm[0, 1], rm[1, 0], rm[1, 1] = cos[0], -sin[0], sin[0], cos[0]
        else:
            rm = torch.eye(4)
            rm[1, 1], rm[1, 2], rm[2, 1], rm[2, 2] = cos[0], -sin[0], sin[0], cos[0]
            if len(angles) >= 2:
                m2 = torch.eye(4)
                m2[0, 0], m2[0, 2], m2[2, 0], m2[2, 2] = cos[1], sin[1], -sin[1], cos[1]
                rm = rm @ m2
            if len(angles) >= 3:
                m3 = torch.eye(4)
                m3[0, 0], m3[0, 1], m3[1, 0], m3[1, 1] = cos[2], -sin[2], sin[2], cos[2]
                rm = rm @ m3
        aff = aff @ rm
    if shear is not None and _truthy(shear):
        c = list(ensure_tuple(shear))
        sm = torch.eye(r + 1)
        if r == 2:
            c = (c + [0.0, 0.0])[:2]
            sm[0, 1], sm[1, 0] = c[0], c[1]
        else:
            c = (c + [0.0] * 6)[:6]
            sm[0, 1], sm[0, 2], sm[1, 0], sm[1, 2], sm[2, 0], sm[2, 1] = c
        aff = aff @ sm
    if translate_ is not None and _truthy(translate_):
        tm = torch.eye(r + 1)
        for i, a in enumerate(list(ensure_tuple(translate_))[:r]):
            tm[i, r] = a
        aff = aff @ tm
    if scale is not None and _truthy(scale):
        s = list(ensure_tuple(scale))
        s = (s + [1.0] * r)[:r]
        aff = aff @ torch.diag(torch.as_tensor(tuple(s) + (1.0,)))
    return aff


def _truthy(x):
    if _is_seq(x):
        return len(x) > 0
    return bool(x)


def affine_grid_apply(grid, aff, align_corners=False):
    """MONAI AffineGrid.__call__ on an existing grid (float32)."""
    grid = grid.to(torch.float32)
    aff = torch.as_tensor(np.asarray(aff.numpy() if isinstance(aff, torch.Tensor) else aff, dtype=np.float64)).to(
        torch.float32)
    if align_corners:
        sc = torch.diag(torch.as_tensor([max(d, 2) / (max(d, 2) - 1) for d in grid.shape[1:]] + [1.0]))
        return ((aff @ sc) @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))
    return (aff @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))


def resample(data, grid, mode, padding_mode, align_corners=False, dtype=torch.float64, norm_coords=True):
    """MONAI Resample.__call__ (grid in centred coordinates when norm_coords)."""
    backend, m, p = _resolve_grid_modes(mode, padding_mode)
    img_t = torch.as_tensor(np.asarray(data), dtype=dtype)
    sr = min(img_t.dim() - 1, 3)
    if backend == "numpy":
        from scipy import ndimage
        grid_t = grid[:sr].to(torch.float64 if grid.dtype == torch.float64 else grid.dtype).clone()
        for i, dim in enumerate(img_t.shape[1:1 + sr]):
            _dim = max(2, dim)
            t = (_dim - 1) / 2.0
            if norm_coords:
                grid_t[i] = ((_dim - 1) / _dim) * grid_t[i] + t if align_corners else grid_t[i] + t
            elif align_corners:
                grid_t[i] = ((_dim - 1) / _dim) * (grid_t[i] + 0.5)
        img_np = img_t.numpy()
        g = grid_t.numpy()
        out = np.stack([ndimage.map_coordinates(c, g, order=m, mode=p) for c in img_np])
        return out.astype(np.float64)
    grid_t = torch.movedim(grid[list(range(sr - 1, -1, -1))], 0, -1).to(dtype).unsqueeze(0).clone()
    if norm_coords:
        for i, dim in enumerate(img_t.shape[sr:0:-1]):
            grid_t[0, ..., i] *= 2.0 / max(2, dim)
    out = F.grid_sample(img_t.unsqueeze(0), grid_t, mode=m, padding_mode=p, align_corners=bool(align_corners))[0]
    return out.double().numpy()


def interpolate(data, size, mode, align_corners, dtype=torch.float32):
    """torch.nn.functional.interpolate as called by MONAI Resize (mode resolved per spatial rank)."""
    t = torch.as_tensor(np.asarray(data), dtype=dtype).unsqueeze(0)
    m = _resolve_interp_mode(mode, t.dim() - 2)
    out = F.interpolate(t, size=[int(s) for s in size], mode=m, align_corners=align_corners)
    return out[0].double().numpy()


# ----------------------------------------------------------------------------------------------------------------
# crop / pad primitives
# ----------------------------------------------------------------------------------------------------------------
_NP_PAD = {"constant": "constant", "edge": "edge", "replicate": "edge", "reflect": "reflect",
           "symmetric": "symmetric", "wrap": "wrap", "circular": "wrap", "maximum": "maximum",
           "minimum": "minimum", "mean": "mean", "median": "median", "linear_ramp": "linear_ramp"}


def pad_item(item, to_pad, mode="constant", value=0.0):
    """MONAI pad_func: to_pad = [(before, after)] per spatial dim. Affine A @ T(-before)."""
    to_pad = [(int(b), int(a)) for b, a in to_pad]
    if not any(b or a for b, a in to_pad):
        return _new(item, item.data, item.affine, item.dtype)
    m = _NP_PAD[mode]
    kw = {"constant_values": value} if m == "constant" else {}
    data = np.pad(item.data, [(0, 0)] + to_pad, mode=m, **kw)
    r = item.data.ndim - 1
    aff = _compose(item.affine, translate(r, [-b for b, _ in to_pad]))
    return _new(item, data, aff, item.dtype)


def crop_item(item, starts, ends):
    """MONAI crop_func with slices (start, end): start clipped to >= 0, end >= start, slicing clips to the size."""
    sp = item.data.shape[1:]
    sl = [slice(None)]
    s_used = []
    cropped = []
    for s, e, n in zip(starts, ends, sp):
        s = max(int(s), 0)
        e = max(int(e), s)
        sl.append(slice(s, e))
        s0, e0, _ = slice(s, e).indices(n)
        s_used.append(s)
        cropped.append((s0, n - e0))
    data = item.data[tuple(sl)]
    aff = _compose(item.affine, translate(len(sp), s_used))
    return _new(item, np.ascontiguousarray(data), aff, item.dtype), cropped


def spatial_pad_width(shape, spatial_size, method="symmetric"):
    target = fall_back_tuple(spatial_size, shape)
    out = []
    for t, n in zip(target, shape):
        w = max(int(t) - int(n), 0)
        out.append((w // 2, w - w // 2) if method == "symmetric" else (0, w))
    return out


def center_crop_box(shape, roi_size):
    roi = fall_back_tuple(roi_size, shape)
    starts, ends = [], []
    for c, s in zip([i // 2 for i in shape], roi):
        st = max(c - int(s) // 2, 0)
        starts.append(st)
        ends.append(max(st + int(s), st))
    return starts, ends


def compute_divisible_spatial_size(shape, k):
    k = fall_back_tuple(k, (1,) * len(shape))
    return tuple(int(np.ceil(d / kd) * kd) if kd > 0 else int(d) for kd, d in zip(k, shape))


def resize_with_pad_or_crop(item, spatial_size, mode="constant", method="symmetric"):
    """MONAI ResizeWithPadOrCrop: centre crop first, then pad. Returns (item, record)."""
    st, en = center_crop_box(item.data.shape[1:], spatial_size)
    cropped_item, cropped = crop_item(item, st, en)
    pw = spatial_pad_width(cropped_item.data.shape[1:], spatial_size, method)
    out = pad_item(cropped_item, pw, mode)
    return out, {"cropped": cropped, "padded": pw}


# ----------------------------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------------------------
def ensure_channel_first(sample, args, params):
    """EnsureChannelFirstd. args.channel_dim: None (data already [C, ...], unchanged), "no_channel" (add a leading
    axis) or an int (move that axis to 0). No params."""
    d = dict(sample)
    for key, _ in key_iter(d, args):
        it = d[key]
        cd = args.get("channel_dim", None)
        if cd is None:
            data = it.data
        elif cd == "no_channel":
            data = it.data[None]
        else:
            data = np.moveaxis(it.data, int(cd), 0)
        d[key] = _new(it, np.ascontiguousarray(data), it.affine, it.dtype)
    return d


def orientation_item(item, axcodes=None, as_closest_canonical=False):
    sp = item.data.shape[1:]
    sr = len(sp)
    a_r = to_affine_nd(sr, item.affine)
    src = io_orientation(a_r)
    if as_closest_canonical:
        ornt = src
    else:
        dst = axcodes2ornt(axcodes[:sr])
        if len(dst) < sr:
            raise ValueError("axcodes must match data_array spatially")
        ornt = ornt_transform(src, dst)
    xform = inv_ornt_aff(ornt, sp)
    data = item.data
    axes = [i + 1 for i in range(sr) if ornt[i, 1] == -1]
    if axes:
        data = np.flip(data, axis=axes)
    perm = [0] + [int(i) + 1 for i in np.argsort(ornt[:, 0])]
    data = np.ascontiguousarray(np.transpose(data, perm))
    out = _new(item, data, _compose(item.affine, xform), item.dtype)
    return out


def orientation(sample, args, params):
    """Orientationd(axcodes, as_closest_canonical). No params. dtype keep."""
    d = dict(sample)
    for key, _ in key_iter(d, args):
        before = d[key]
        d[key] = orientation_item(before, args.get("axcodes"), bool(args.get("as_closest_canonical", False)))
        _trace(key, {"op": "orientation", "orig_affine": before.affine.copy()})
    return d


def spatial_resample_item(item, dst_affine, spatial_size, mode="bilinear", padding_mode="border",
                          align_corners=False, dtype="float64"):
    """MONAI spatial_resample (functional). Returns float32 item."""
    sp = item.data.shape[1:]
    r = min(len(sp), 3)
    src = to_affine_nd(r, item.affine)
    dst = to_affine_nd(r, dst_affine) if dst_affine is not None else src
    in_size = list(sp[:r])
    if spatial_size is None:
        spatial_size, _ = compute_shape_offset(in_size, src, dst)
    spatial_size = [int(s) for s in fall_back_tuple(list(spatial_size)[:r], in_size, lambda v: v >= 0)]
    xform = np.eye(r + 1) if r < 2 else np.linalg.solve(src, dst)
    same_size = np.allclose(spatial_size, in_size)
    unchanged = (torch.allclose(torch.as_tensor(src), torch.as_tensor(dst), atol=AFFINE_TOL) and same_size) or (
        torch.allclose(torch.as_tensor(xform), torch.eye(r + 1, dtype=torch.float64), atol=AFFINE_TOL) and same_size)
    if unchanged:
        return _f32_item(item, item.data, item.affine)
    dt = _torch_dtype(dtype, torch.float64)
    if isinstance(mode, str) and mode.isdigit():
        mode = int(mode)
    if isinstance(mode, int):
        m2 = xform @ translate(r, [float(d - 1) / 2 for d in spatial_size])
        grid = create_grid_t(spatial_size, dt)
        grid = _affine_grid_generic(grid, torch.as_tensor(m2).to(dt), align_corners)
        data = resample(item.data, grid, mode, padding_mode, align_corners, dt, norm_coords=False)
    else:
        data = affine_transform(item.data, xform, spatial_size, mode, padding_mode, align_corners, dt)
    return _f32_item(item, data, _compose(item.affine, xform))


def _affine_grid_generic(grid, aff, align_corners):
    """AffineGrid with a given matrix in the grid dtype (used by the spline path of spatial_resample)."""
    if align_corners:
        sc = torch.diag(torch.as_tensor([max(d, 2) / (max(d, 2) - 1) for d in grid.shape[1:]] + [1.0],
                                        dtype=grid.dtype))
        return ((aff @ sc) @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))
    return (aff @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))


def spacing_item(item, pixdim, diagonal=False, mode="bilinear", padding_mode="border", align_corners=False,
                 dtype="float64", scale_extent=False, recompute_affine=False, min_pixdim=None, max_pixdim=None,
                 output_spatial_shape=None):
    sp = item.data.shape[1:]
    sr = len(sp)
    affine_ = to_affine_nd(sr, item.affine)
    pix = np.array(ensure_tuple(pixdim), dtype=np.float64)
    out_d = pix[:sr].copy()
    if out_d.size < sr:
        out_d = np.append(out_d, [out_d[-1]] * (sr - out_d.size))
    mn_all = np.array(ensure_tuple(min_pixdim), dtype=np.float64) if min_pixdim is not None else np.array([np.nan])
    mx_all = np.array(ensure_tuple(max_pixdim), dtype=np.float64) if max_pixdim is not None else np.array([np.nan])
    orig_d = affine_to_spacing(affine_, sr)
    for idx in range(sr):
        _d = orig_d[idx]
        mn = mn_all[idx] if idx < len(mn_all) else np.nan
        mx = mx_all[idx] if idx < len(mx_all) else np.nan
        target = out_d[idx]
        mn = target if np.isnan(mn) else min(mn, target)
        mx = target if np.isnan(mx) else max(mx, target)
        if mn > mx:
            raise ValueError("min_pixdim is larger than max_pixdim")
        out_d[idx] = _d if (mn - AFFINE_TOL) <= _d <= (mx + AFFINE_TOL) else target
    new_affine = zoom_affine(affine_, out_d, diagonal=diagonal)
    output_shape, offset = compute_shape_offset(sp, affine_, new_affine, scale_extent)
    new_affine[:sr, -1] = offset[:sr]
    actual_shape = list(output_shape) if output_spatial_shape is None else list(output_spatial_shape)
    out = spatial_resample_item(item, new_affine, actual_shape, mode, padding_mode, align_corners, dtype)
    if recompute_affine:
        a = scale_affine(list(sp), actual_shape)
        if len(a) < 4:
            a = to_affine_nd(3, a)
        out = _new(out, out.data, a, out.dtype)
    rec = {"op": "spacing", "src_affine": affine_, "orig_size": list(sp), "mode": mode,
           "padding_mode": padding_mode, "align_corners": align_corners, "dtype": dtype or "float64"}
    return out, rec


def _pixdim_of(affine):
    return affine_to_spacing(affine, len(affine) - 1)


def spacing(sample, args, params):
    """Spacingd(pixdim, diagonal, mode, padding_mode, align_corners, dtype, scale_extent, recompute_affine,
    min_pixdim, max_pixdim, ensure_same_shape). No params. Output float32."""
    d = dict(sample)
    init_shape = init_pix = None
    output_shape_k = None
    ess = bool(args.get("ensure_same_shape", True))
    per = {"mode": "bilinear", "padding_mode": "border", "align_corners": False, "dtype": "float64",
           "scale_extent": False}
    for key, kw in key_iter(d, args, per):
        it = d[key]
        should_match = False
        if ess:
            if init_shape is None:
                init_shape, init_pix = it.data.shape[1:], _pixdim_of(it.affine)
            else:
                should_match = np.allclose(init_shape, it.data.shape[1:]) and np.allclose(
                    init_pix, _pixdim_of(it.affine), atol=1e-3)
        out, rec = spacing_item(it, args["pixdim"], bool(args.get("diagonal", False)), kw["mode"],
                                kw["padding_mode"], kw["align_corners"], kw["dtype"], kw["scale_extent"],
                                bool(args.get("recompute_affine", False)), args.get("min_pixdim"),
                                args.get("max_pixdim"), output_shape_k if should_match else None)
        d[key] = out
        _trace(key, rec)
        if output_shape_k is None:
            output_shape_k = list(out.data.shape[1:])
    return d


def resize_item(item, spatial_size, size_mode="all", mode="area", align_corners=None, dtype="float32"):
    sp = list(item.data.shape[1:])
    if size_mode == "all":
        if len(ensure_tuple(spatial_size)) != len(sp) and _is_seq(spatial_size):
            raise NotImplementedError("len(spatial_size) must equal the spatial rank in the twin")
        out_size = [int(s) for s in fall_back_tuple(spatial_size, sp)]
    else:
        if _is_seq(spatial_size):
            raise ValueError("spatial_size must be an int number if size_mode is 'longest'.")
        scale = spatial_size / max(sp)
        out_size = [int(round(s * scale)) for s in sp]
    rec = {"op": "resize", "orig_size": sp, "mode": mode, "align_corners": align_corners, "dtype": dtype}
    if out_size == sp:
        return _f32_item(item, item.data, item.affine), rec
    data = interpolate(item.data, out_size, mode, align_corners, _torch_dtype(dtype, torch.float32))
    return _f32_item(item, data, _compose(item.affine, scale_affine(sp, out_size))), rec


def resize(sample, args, params):
    """Resized(spatial_size, size_mode, mode, align_corners, dtype). anti_aliasing must be False. Output float32."""
    d = dict(sample)
    per = {"mode": "area", "align_corners": None, "dtype": "float32", "anti_aliasing": False}
    for key, kw in key_iter(d, args, per):
        if kw["anti_aliasing"]:
            raise NotImplementedError("anti_aliasing=True is not covered by the twin")
        d[key], rec = resize_item(d[key], args["spatial_size"], args.get("size_mode", "all"), kw["mode"],
                                  kw["align_corners"], kw["dtype"])
        _trace(key, rec)
    return d


def spatial_pad(sample, args, params):
    """SpatialPadd(spatial_size, method, mode, value). No params. dtype keep."""
    d = dict(sample)
    for key, kw in key_iter(d, args, {"mode": "constant"}):
        it = d[key]
        pw = spatial_pad_width(it.data.shape[1:], args["spatial_size"], args.get("method", "symmetric"))
        d[key] = pad_item(it, pw, kw["mode"], args.get("value", args.get("constant_values", 0.0)))
        _trace(key, {"op": "pad", "padded": pw})
    return d


def divisible_pad(sample, args, params):
    """DivisiblePadd(k, mode, method). No params. dtype keep."""
    d = dict(sample)
    for key, kw in key_iter(d, args, {"mode": "constant"}):
        it = d[key]
        new = compute_divisible_spatial_size(it.data.shape[1:], args["k"])
        pw = spatial_pad_width(it.data.shape[1:], new, args.get("method", "symmetric"))
        d[key] = pad_item(it, pw, kw["mode"], args.get("value", args.get("constant_values", 0.0)))
        _trace(key, {"op": "pad", "padded": pw})
    return d


def center_spatial_crop(sample, args, params):
    """CenterSpatialCropd(roi_size). No params. dtype keep."""
    d = dict(sample)
    for key, _ in key_iter(d, args):
        it = d[key]
        st, en = center_crop_box(it.data.shape[1:], args["roi_size"])
        d[key], cropped = crop_item(it, st, en)
        _trace(key, {"op": "crop", "cropped": cropped})
    return d


def _select_fn(spec):
    """args.select_fn: None/"is_positive" -> x > 0; a number t -> x > t; {"threshold": t} -> x > t;
    {"equal": v} -> x == v; {"op": ">=", "value": v}."""
    if spec is None or spec == "is_positive":
        return lambda x: x > 0
    if isinstance(spec, (int, float)):
        return lambda x: x > spec
    if isinstance(spec, dict):
        if "threshold" in spec:
            return lambda x: x > spec["threshold"]
        if "equal" in spec:
            return lambda x: x == spec["equal"]
        ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "==": np.equal,
               "!=": np.not_equal}
        return lambda x: ops[spec["op"]](x, spec["value"])
    raise ValueError(f"unsupported select_fn {spec!r}")


def generate_spatial_bounding_box(img, select_fn=None, channel_indices=None, margin=0, allow_smaller=True):
    data = img if channel_indices is None else img[list(ensure_tuple(channel_indices))]
    mask = np.any(select_fn(data), axis=0)
    nd = mask.ndim
    margin = ensure_tuple_rep(margin, nd)
    if any(m < 0 for m in margin):
        raise ValueError("margin value should not be negative number")
    start, end = [0] * nd, [0] * nd
    for di in range(nd):
        other = tuple(a for a in range(nd) if a != di)
        proj = np.any(mask, axis=other) if other else mask
        if not proj.any():
            return [0] * nd, [0] * nd
        idx = np.nonzero(proj)[0]
        mn = int(idx[0]) - int(margin[di])
        mx = int(idx[-1]) + int(margin[di]) + 1
        if allow_smaller:
            mn = max(mn, 0)
            mx = min(mx, img.shape[1 + di])
        start[di], end[di] = mn, mx
    return start, end


def crop_foreground_box(src_item, args):
    start, end = generate_spatial_bounding_box(
        src_item.data, _select_fn(args.get("select_fn")), args.get("channel_indices"), args.get("margin", 0),
        bool(args.get("allow_smaller", True)))
    start = np.asarray(start, dtype=np.int16).astype(np.int64)
    end = np.asarray(end, dtype=np.int16).astype(np.int64)
    orig = end - start
    size = np.asarray(compute_divisible_spatial_size(orig.tolist(), args.get("k_divisible", 1)))
    start = start - np.floor_divide(size - orig, 2)
    end = start + size
    return start, end


def crop_pad_box(item, start, end, mode="constant", value=0.0):
    cropped_item, cropped = crop_item(item, start, end)
    sp = np.asarray(item.data.shape[1:])
    pad_before = np.maximum(-np.asarray(start), 0)
    pad_after = np.maximum(np.asarray(end) - sp, 0)
    pw = [(int(b), int(a)) for b, a in zip(pad_before, pad_after)]
    return pad_item(cropped_item, pw, mode, value), {"op": "cropforeground", "cropped": cropped, "padded": pw}


def crop_foreground(sample, args, params):
    """CropForegroundd(source_key, select_fn, channel_indices, margin, allow_smaller=True (MONAI 1.3/1.4 default),
    k_divisible, mode, start_coord_key, end_coord_key). args.select_fn: None -> x > 0, number t -> x > t.
    No params. Writes the box (after k_divisible adjustment) under start/end coord keys as lists."""
    d = dict(sample)
    start, end = crop_foreground_box(d[args["source_key"]], args)
    sk = args.get("start_coord_key", "foreground_start_coord")
    ek = args.get("end_coord_key", "foreground_end_coord")
    if sk is not None:
        d[sk] = [int(v) for v in start]
    if ek is not None:
        d[ek] = [int(v) for v in end]
    for key, kw in key_iter(d, args, {"mode": "constant"}):
        d[key], rec = crop_pad_box(d[key], start, end, kw["mode"], args.get("value", 0.0))
        _trace(key, rec)
    return d


def rand_spatial_crop(sample, args, params):
    """RandSpatialCropd(roi_size, max_roi_size, random_center=True, random_size=False).
    params: {"start": [..]} min corner of the crop (MONAI get_random_patch draw: randint(0, S - size + 1));
    alternatively {"center": [..]} (crop start = center - size//2 like SpatialCrop); {"size": [..]} required when
    random_size=True. Crop size = min(size, S) per axis. random_center=False -> centre crop (no params)."""
    d = dict(sample)
    keys = [k for k in ensure_tuple(args["keys"]) if k in d]
    img_size = list(d[keys[0]].data.shape[1:])
    size = list(fall_back_tuple(args["roi_size"], img_size))
    if args.get("random_size", False):
        size = [int(s) for s in params["size"]]
    valid = [min(s, n) for s, n in zip(size, img_size)]
    for key, _ in key_iter(d, args):
        it = d[key]
        if args.get("random_center", True):
            if "start" in params:
                st = [int(s) for s in params["start"]]
            else:
                st = [max(int(c) - v // 2, 0) for c, v in zip(params["center"], valid)]
            en = [s + v for s, v in zip(st, valid)]
        else:
            st, en = center_crop_box(it.data.shape[1:], size)
        d[key], cropped = crop_item(it, st, en)
        _trace(key, {"op": "crop", "cropped": cropped})
    return d


def pos_neg_candidates(label, image=None, image_threshold=0.0):
    """MONAI map_binary_to_indices: (fg, bg) flat C-order indices over the spatial grid."""
    label = np.asarray(label)
    if label.shape[0] > 1:
        label = label[1:]
    fg_mask = np.any(label != 0, axis=0).ravel()
    fg = np.flatnonzero(fg_mask)
    if image is not None:
        img_mask = np.any(np.asarray(image) > image_threshold, axis=0).ravel()
        bg = np.flatnonzero(img_mask & ~fg_mask)
    else:
        bg = np.flatnonzero(~fg_mask)
    return fg, bg


def correct_crop_centers(centers, spatial_size, label_spatial_shape, allow_smaller=False):
    """MONAI transforms.utils.correct_crop_centers."""
    spatial_size = fall_back_tuple(spatial_size, label_spatial_shape)
    if any(np.subtract(label_spatial_shape, spatial_size) < 0):
        if not allow_smaller:
            raise ValueError("The size of the proposed random crop ROI is larger than the image size.")
        spatial_size = tuple(min(l, s) for l, s in zip(label_spatial_shape, spatial_size))
    valid_start = np.floor_divide(spatial_size, 2)
    valid_end = np.subtract(np.asarray(label_spatial_shape) + np.array(1), np.asarray(spatial_size) / np.array(2)
                            ).astype(np.uint16)
    for i, valid_s in enumerate(valid_start):
        if valid_s == valid_end[i]:
            valid_end[i] += 1
    return tuple(int(min(max(c, v_s), v_e - 1)) for c, v_s, v_e in zip(centers, valid_start, valid_end))


def rand_crop_by_pos_neg_label(sample, args, params):
    """RandCropByPosNegLabeld(label_key, spatial_size, pos, neg, num_samples, image_key, image_threshold,
    allow_smaller=False). params: {"centers": [[i, j(, k)], ...]} = the num_samples raw voxels MONAI draws (unravelled
    fg/bg flat indices, BEFORE correct_crop_centers). The twin checks they are valid candidates (see
    pos_neg_candidates) unless params.check_candidates is false. Returns a list of num_samples dicts; each also gets
    "crop_center" (corrected centre) as a plain value only if params.report_centers is true."""
    d = dict(sample)
    label = d[args["label_key"]]
    lshape = list(label.data.shape[1:])
    raw = [list(c) for c in params["centers"]]
    n = int(args.get("num_samples", 1))
    if len(raw) != n:
        raise ValueError(f"need {n} centers, got {len(raw)}")
    if params.get("check_candidates", True):
        img = d[args["image_key"]].data if args.get("image_key") else None
        fg, bg = pos_neg_candidates(label.data, img, args.get("image_threshold", 0.0))
        cand = set(fg.tolist()) | set(bg.tolist())
        for c in raw:
            if int(np.ravel_multi_index(tuple(int(v) for v in c), lshape)) not in cand:
                raise ValueError(f"center {c} is neither a fg nor a bg candidate")
    centers = [correct_crop_centers(c, args["spatial_size"], lshape, bool(args.get("allow_smaller", False)))
               for c in raw]
    out = []
    for i, c in enumerate(centers):
        s = {k: v for k, v in d.items()}
        for key, _ in key_iter(d, args):
            it = d[key]
            roi = fall_back_tuple(args["spatial_size"], it.data.shape[1:])
            st = [max(int(cc) - int(r) // 2, 0) for cc, r in zip(c, roi)]
            en = [a + int(r) for a, r in zip(st, roi)]
            s[key], cropped = crop_item(it, st, en)
            if _TRACE is not None and i == _TRACE.get("__sample_index__", 0):
                _trace(key, {"op": "crop", "cropped": cropped})
        if params.get("report_centers", False):
            s["crop_center"] = list(c)
        out.append(s)
    return out


def flip_item(item, spatial_axis):
    sp = item.data.shape[1:]
    r = len(sp)
    if spatial_axis is None:
        axes = list(range(r))
    else:
        axes = [a % (r + 1) - 1 if a < 0 else a for a in ensure_tuple(spatial_axis)]
    x = np.eye(r + 1)
    for a in axes:
        x[a, a] = -1
        x[a, -1] = sp[a] - 1
    data = np.ascontiguousarray(np.flip(item.data, axis=[a + 1 for a in axes]))
    return _new(item, data, _compose(item.affine, x), item.dtype)


def flip(sample, args, params):
    """Flipd(spatial_axis). No params. dtype keep."""
    d = dict(sample)
    for key, _ in key_iter(d, args):
        d[key] = flip_item(d[key], args.get("spatial_axis"))
        _trace(key, {"op": "flip", "spatial_axis": args.get("spatial_axis"), "done": True})
    return d


def rand_flip(sample, args, params):
    """RandFlipd(prob, spatial_axis). params: {"flip": bool} (default true) = the probability draw."""
    d = dict(sample)
    do = bool(params.get("flip", True))
    for key, _ in key_iter(d, args):
        if do:
            d[key] = flip_item(d[key], args.get("spatial_axis"))
        _trace(key, {"op": "flip", "spatial_axis": args.get("spatial_axis"), "done": do})
    return d


def rotate90_item(item, k, spatial_axes=(0, 1)):
    k = (4 + (int(k) % 4)) % 4
    sp = list(item.data.shape[1:])
    nd = len(sp) + 1
    axes = [a % nd if a < 0 else a + 1 for a in ensure_tuple(spatial_axes)]
    sp_out = list(sp)
    if k in (1, 3):
        a0, a1 = axes[0] - 1, axes[1] - 1
        sp_out[a0], sp_out[a1] = sp[a1], sp[a0]
    r = len(sp)
    xform = translate(r, [-float(d - 1) / 2 for d in sp_out])
    s = -1.0 if int(axes[0]) - int(axes[1]) in (-1, 2) else 1.0
    if r == 2:
        rot = create_rotate_np(2, [s * np.pi / 2])
    else:
        idx = {1, 2, 3} - set(axes)
        angle = [0.0, 0.0, 0.0]
        angle[idx.pop() - 1] = s * np.pi / 2
        rot = create_rotate_np(3, angle)
    for _ in range(k):
        xform = rot @ xform
    xform = translate(r, [float(d - 1) / 2 for d in sp]) @ xform
    data = np.ascontiguousarray(np.rot90(item.data, k, axes=tuple(axes)))
    return _new(item, data, _compose(item.affine, xform), item.dtype), k, [a - 1 for a in axes]


def rotate90(sample, args, params):
    """Rotate90d(k=1, spatial_axes=(0, 1)). No params. dtype keep."""
    d = dict(sample)
    for key, _ in key_iter(d, args):
        d[key], k, axes = rotate90_item(d[key], args.get("k", 1), args.get("spatial_axes", (0, 1)))
        _trace(key, {"op": "rot90", "k": k, "axes": axes, "done": True})
    return d


def rand_rotate90(sample, args, params):
    """RandRotate90d(prob, max_k, spatial_axes). params: {"k": int} = randint(max_k)+1 (k=0 or {"do": false} means
    the probability branch was false). dtype keep."""
    d = dict(sample)
    k = int(params.get("k", 1))
    do = bool(params.get("do", True)) and k != 0
    for key, _ in key_iter(d, args):
        if do:
            d[key], kk, axes = rotate90_item(d[key], k, args.get("spatial_axes", (0, 1)))
            _trace(key, {"op": "rot90", "k": kk, "axes": axes, "done": True})
        else:
            _trace(key, {"op": "rot90", "done": False})
    return d


def zoom_item(item, zoom, keep_size=True, mode="area", padding_mode="edge", align_corners=None, dtype="float32"):
    sp = list(item.data.shape[1:])
    z = list(ensure_tuple_rep(zoom, len(sp))) if not _is_seq(zoom) or len(zoom) == len(sp) else None
    if z is None:
        if len(zoom) == 2 and len(sp) == 3:
            z = [zoom[0], zoom[0], zoom[1]]
        else:
            raise ValueError(f"zoom {zoom} does not match spatial rank {len(sp)}")
    z = [float(v) for v in z]
    out_size = [int(math.floor(float(i) * zz)) for i, zz in zip(sp, z)]
    dt = _torch_dtype(dtype, torch.float32)
    t = torch.as_tensor(item.data, dtype=dt).unsqueeze(0)
    m = _resolve_interp_mode(mode, len(sp))
    zoomed = F.interpolate(t, recompute_scale_factor=True, scale_factor=z, mode=m, align_corners=align_corners)[0]
    zoomed = zoomed.double().numpy()
    out = _f32_item(item, zoomed, _compose(item.affine, scale_affine(sp, out_size)))
    padcrop = None
    if keep_size and not np.allclose(sp, zoomed.shape[1:]):
        out, padcrop = resize_with_pad_or_crop(out, sp, padding_mode)
    rec = {"op": "zoom", "orig_size": sp, "mode": mode, "align_corners": align_corners, "dtype": dtype,
           "padcrop": padcrop}
    return out, rec


def zoom(sample, args, params):
    """Zoomd(zoom, mode=area, padding_mode=edge, align_corners, dtype, keep_size=True). No params. Output float32."""
    d = dict(sample)
    per = {"mode": "area", "padding_mode": "edge", "align_corners": None, "dtype": "float32"}
    for key, kw in key_iter(d, args, per):
        d[key], rec = zoom_item(d[key], args["zoom"], bool(args.get("keep_size", True)), kw["mode"],
                                kw["padding_mode"], kw["align_corners"], kw["dtype"])
        _trace(key, rec)
    return d


def rand_zoom(sample, args, params):
    """RandZoomd(prob, min_zoom, max_zoom, mode, padding_mode, align_corners, dtype, keep_size).
    params: {"zoom": z} the drawn factor(s): scalar, one per spatial axis, or 2 values for 3D ([z0, z0, z1]);
    {"do": false} = not applied (output float32, unchanged values)."""
    d = dict(sample)
    per = {"mode": "area", "padding_mode": "edge", "align_corners": None, "dtype": "float32"}
    do = bool(params.get("do", True))
    for key, kw in key_iter(d, args, per):
        if do:
            z = params["zoom"]
            if _is_seq(z) and len(z) == 1:
                z = z[0]
            d[key], rec = zoom_item(d[key], z, bool(args.get("keep_size", True)), kw["mode"], kw["padding_mode"],
                                    kw["align_corners"], kw["dtype"])
            _trace(key, rec)
        else:
            d[key] = _f32_item(d[key], d[key].data, d[key].affine)
            _trace(key, {"op": "noop"})
    return d


def rotate_item(item, angle, keep_size=True, mode="bilinear", padding_mode="border", align_corners=False,
                dtype="float32"):
    sp = list(item.data.shape[1:])
    nd = len(sp)
    angles = ensure_tuple_rep(angle, 1 if nd == 2 else 3)  # NB: a scalar angle on 3D rotates about all 3 axes
    transform = create_rotate_np(nd, angles)
    if keep_size:
        out_shape = np.asarray(sp, dtype=int)
    else:
        corners = np.asarray(np.meshgrid(*[(0, dim) for dim in sp], indexing="ij")).reshape((nd, -1))
        corners = transform[:-1, :-1] @ corners
        out_shape = np.asarray(np.ptp(corners, axis=1) + 0.5, dtype=int)
    shift = translate(nd, ((np.array(sp) - 1) / 2).tolist())
    shift_1 = translate(nd, (-(np.asarray(out_shape, dtype=int) - 1) / 2).tolist())
    m = shift @ transform @ shift_1
    dt = _torch_dtype(dtype, torch.float32)
    data = affine_transform(item.data, m, [int(i) for i in out_shape], mode, padding_mode, align_corners, dt)
    out = _f32_item(item, data, _compose(item.affine, m))
    rec = {"op": "rotate", "mat": m, "orig_size": sp, "mode": mode, "padding_mode": padding_mode,
           "align_corners": align_corners, "dtype": dtype}
    return out, rec


def rotate(sample, args, params):
    """Rotated(angle, keep_size, mode, padding_mode, align_corners, dtype). No params. Output float32."""
    d = dict(sample)
    per = {"mode": "bilinear", "padding_mode": "border", "align_corners": False, "dtype": "float32"}
    for key, kw in key_iter(d, args, per):
        d[key], rec = rotate_item(d[key], args["angle"], bool(args.get("keep_size", True)), kw["mode"],
                                  kw["padding_mode"], kw["align_corners"], kw["dtype"])
        _trace(key, rec)
    return d


def rand_rotate(sample, args, params):
    """RandRotated(range_x, range_y, range_z, prob, keep_size, mode, padding_mode, align_corners, dtype).
    params: {"angles": x} for 2D or [x, y, z] for 3D (radians; MONAI's uniform draws); {"do": false} = not applied
    (output float32, unchanged values)."""
    d = dict(sample)
    per = {"mode": "bilinear", "padding_mode": "border", "align_corners": False, "dtype": "float32"}
    do = bool(params.get("do", True))
    for key, kw in key_iter(d, args, per):
        if do:
            a = params["angles"]
            nd = d[key].data.ndim - 1
            if nd == 2:
                a = a[0] if _is_seq(a) else a
            d[key], rec = rotate_item(d[key], a, bool(args.get("keep_size", True)), kw["mode"], kw["padding_mode"],
                                      kw["align_corners"], kw["dtype"])
            _trace(key, rec)
        else:
            d[key] = _f32_item(d[key], d[key].data, d[key].affine)
            _trace(key, {"op": "noop"})
    return d


def compute_w_affine(aff, img_size, sp_size):
    r = len(img_size)
    mat = to_affine_nd(r, np.asarray(aff, dtype=np.float64))
    return translate(r, [float(d - 1) / 2 for d in img_size]) @ mat @ translate(r, [-float(d - 1) / 2 for d in sp_size])


def affine(sample, args, params):
    """Affined(rotate_params, shear_params, translate_params, scale_params, affine, spatial_size, mode,
    padding_mode=reflection, dtype=float32, align_corners=False). No params. Output float32."""
    d = dict(sample)
    per = {"mode": "bilinear", "padding_mode": "reflection"}
    dt = _torch_dtype(args.get("dtype", "float32"), torch.float32)
    ac = bool(args.get("align_corners", False))
    for key, kw in key_iter(d, args, per):
        it = d[key]
        sp = list(it.data.shape[1:])
        r = len(sp)
        sp_size = list(fall_back_tuple(args["spatial_size"], sp)) if args.get("spatial_size") is not None else sp
        if args.get("affine") is not None:
            aff = torch.as_tensor(to_affine_nd(r, np.asarray(args["affine"], dtype=np.float64)))
        else:
            aff = _affine_params_matrix(r, args.get("rotate_params"), args.get("shear_params"),
                                        args.get("translate_params"), args.get("scale_params"))
        aff = aff.to(dt if dt in (torch.float16, torch.float64) else torch.float32)
        grid = create_grid_t(sp_size, aff.dtype)
        if ac:
            sc = torch.diag(torch.as_tensor([max(s, 2) / (max(s, 2) - 1) for s in grid.shape[1:]] + [1.0],
                                            dtype=aff.dtype))
            grid = ((aff @ sc) @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))
        else:
            grid = (aff @ grid.reshape(grid.shape[0], -1)).reshape([-1] + list(grid.shape[1:]))
        data = resample(it.data, grid, kw["mode"], kw["padding_mode"], ac, dt)
        d[key] = _f32_item(it, data, _compose(it.affine, compute_w_affine(aff.double().numpy(), sp, sp_size)))
        _trace(key, {"op": "affine", "aff": aff.double().numpy(), "orig_size": sp, "mode": kw["mode"],
                     "padding_mode": kw["padding_mode"], "align_corners": ac, "dtype": dt, "do_resampling": True})
    return d


def rand_affine(sample, args, params):
    """RandAffined(spatial_size, prob, rotate_range, shear_range, translate_range, scale_range, mode,
    padding_mode=reflection). params: {"rotate": [...], "shear": [...], "translate": [...], "scale": [...]} = the values
    MONAI drew (scale INCLUDING the +1.0; omitted/empty = that component unused, e.g. scale_range None);
    {"do": false} = probability branch false. Output float32."""
    d = dict(sample)
    keys = [k for k in ensure_tuple(args["keys"]) if k in d]
    if not keys:
        return d
    per = {"mode": "bilinear", "padding_mode": "reflection"}
    first = d[keys[0]]
    sp0 = list(first.data.shape[1:])
    r = len(sp0)
    sp_size = list(fall_back_tuple(args.get("spatial_size"), sp0)) if args.get("spatial_size") is not None else sp0
    do = bool(params.get("do", True))
    do_resampling = do or sp_size != sp0
    if do:
        aff = _affine_params_matrix(r, params.get("rotate"), params.get("shear"), params.get("translate"),
                                    params.get("scale"))
    else:
        aff = torch.eye(r + 1)
    grid = None
    if do_resampling:
        grid = create_grid_t(sp_size, torch.float64)
        if do:
            grid = affine_grid_apply(grid, aff)
    for key, kw in key_iter(d, args, per):
        it = d[key]
        if do_resampling:
            data = resample(it.data, grid, kw["mode"], kw["padding_mode"], False, torch.float64)
            sp = list(it.data.shape[1:])
            d[key] = _f32_item(it, data, _compose(it.affine, compute_w_affine(aff.double().numpy(), sp, sp_size)))
        else:
            d[key] = _f32_item(it, it.data, it.affine)
        _trace(key, {"op": "affine", "aff": aff.double().numpy(), "orig_size": list(it.data.shape[1:]),
                     "mode": kw["mode"], "padding_mode": kw["padding_mode"], "align_corners": False,
                     "dtype": torch.float64, "do_resampling": do_resampling, "is_rand": True})
    return d


def gaussian_1d(sigma, truncated):
    sigma_t = torch.as_tensor(sigma, dtype=torch.float)
    tail = int(max(float(sigma_t) * truncated, 0.5) + 0.5)
    x = torch.arange(-tail, tail + 1, dtype=torch.float)
    t = 0.70710678 / torch.abs(sigma_t)
    out = 0.5 * ((t * (x + 0.5)).erf() - (t * (x - 0.5)).erf())
    return out.clamp(min=0)


def gaussian_filter(x, sigma, truncated=3.0):
    """MONAI GaussianFilter (erf kernel, not normalised) via separable_filtering with zero padding.
    x: torch [B, C, *spatial] float32."""
    sd = x.dim() - 2
    kernels = [gaussian_1d(s, truncated).to(x) for s in ensure_tuple_rep(sigma, sd)]
    pads = [(k.shape[0] - 1) // 2 for k in kernels]
    nch = x.shape[1]
    conv = [F.conv1d, F.conv2d, F.conv3d][sd - 1]

    def _conv(inp, dd):
        if dd < 0:
            return inp
        s = [1] * inp.dim()
        s[dd + 2] = -1
        k = kernels[dd].reshape(s)
        if k.numel() == 1 and k.reshape(-1)[0] == 1:
            return _conv(inp, dd - 1)
        k = k.repeat([nch, 1] + [1] * sd)
        pad = [0] * sd
        pad[dd] = pads[dd]
        flat = sum([[p, p] for p in reversed(pad)], [])
        padded = F.pad(inp, flat, mode="constant")
        return conv(input=_conv(padded, dd - 1), weight=k, groups=nch)

    return _conv(x, sd - 1)


def _load_array(spec):
    if isinstance(spec, dict):
        return np.fromfile(spec["raw"], dtype=spec.get("dtype", "<f8")).reshape(spec["shape"])
    return np.asarray(spec, dtype=np.float64)


def rand_3d_elastic(sample, args, params):
    """Rand3DElasticd(sigma_range, magnitude_range, spatial_size, prob, rotate_range, shear_range, translate_range,
    scale_range, mode, padding_mode=reflection).
    params: {"rand_offset": [3, *out_size] raw uniform(-1, 1) draw (nested list or {"raw": path, "shape": [...],
    "dtype": "<f8"}; rounded to float32 like MONAI), "sigma": float, "magnitude": float, plus the affine draws
    "rotate"/"shear"/"translate"/"scale" as in RandAffined}; {"do": false} = identity grid.
    The MetaTensor affine is NOT updated (MONAI behaviour). Output float32."""
    d = dict(sample)
    keys = [k for k in ensure_tuple(args["keys"]) if k in d]
    if not keys:
        return d
    first = d[keys[0]]
    sp_size = list(fall_back_tuple(args.get("spatial_size"), first.data.shape[1:])) \
        if args.get("spatial_size") is not None else list(first.data.shape[1:])
    grid = create_grid_t(sp_size, torch.float64)
    if params.get("do", True):
        off = torch.as_tensor(_load_array(params["rand_offset"]).astype(np.float32)).unsqueeze(0)
        if list(off.shape[2:]) != sp_size:
            raise ValueError(f"rand_offset spatial shape {list(off.shape[2:])} != {sp_size}")
        grid[:3] += gaussian_filter(off, float(params["sigma"]), 3.0)[0] * float(params["magnitude"])
        aff = _affine_params_matrix(3, params.get("rotate"), params.get("shear"), params.get("translate"),
                                    params.get("scale"))
        grid = affine_grid_apply(grid, aff)
    for key, kw in key_iter(d, args, {"mode": "bilinear", "padding_mode": "reflection"}):
        it = d[key]
        data = resample(it.data, grid, kw["mode"], kw["padding_mode"], False, torch.float64)
        d[key] = _f32_item(it, data, it.affine)
    return d


# ----------------------------------------------------------------------------------------------------------------
# Invertd
# ----------------------------------------------------------------------------------------------------------------
def _inv_step(rec, item, nearest):
    op = rec["op"]
    if op in ("noop",):
        return item
    if op == "orientation":
        return orientation_item(item, aff2axcodes(rec["orig_affine"]))
    if op == "spacing":
        mode = "nearest" if nearest else rec["mode"]  # convert_applied_interp_mode: spline orders too
        ac = False if nearest else bool(rec["align_corners"])
        return spatial_resample_item(item, rec["src_affine"], rec["orig_size"], mode, rec["padding_mode"], ac,
                                     rec["dtype"])
    if op == "pad":
        sp = item.data.shape[1:]
        st = [b for b, _ in rec["padded"]]
        en = [n - a for n, (_, a) in zip(sp, rec["padded"])]
        return crop_item(item, st, en)[0]
    if op == "crop":
        return pad_item(item, rec["cropped"], "constant")
    if op == "cropforeground":
        sp = item.data.shape[1:]
        it = crop_item(item, [b for b, _ in rec["padded"]], [n - a for n, (_, a) in zip(sp, rec["padded"])])[0]
        return pad_item(it, rec["cropped"], "constant")
    if op == "flip":
        return flip_item(item, rec["spatial_axis"]) if rec["done"] else item
    if op == "rot90":
        if not rec["done"]:
            return item
        return rotate90_item(item, 4 - rec["k"] % 4, rec["axes"])[0]
    if op == "resize":
        mode = "nearest" if nearest else rec["mode"]
        ac = None if nearest else rec["align_corners"]
        return resize_item(item, rec["orig_size"], "all", mode, ac, rec["dtype"])[0]
    if op == "zoom":
        if rec["padcrop"] is not None:
            pc = rec["padcrop"]
            sp = item.data.shape[1:]
            item = crop_item(item, [b for b, _ in pc["padded"]], [n - a for n, (_, a) in zip(sp, pc["padded"])])[0]
            item = pad_item(item, pc["cropped"], "constant")
        mode = "nearest" if nearest else rec["mode"]
        ac = None if nearest else rec["align_corners"]
        return resize_item(item, rec["orig_size"], "all", mode, ac, rec["dtype"])[0]
    if op == "rotate":
        mode = "nearest" if nearest else rec["mode"]
        ac = False if nearest else bool(rec["align_corners"])
        inv = np.linalg.inv(rec["mat"])
        dt = _torch_dtype(rec["dtype"], torch.float32)
        data = affine_transform(item.data, inv, rec["orig_size"], mode, rec["padding_mode"], ac, dt)
        return _f32_item(item, data, _compose(item.affine, inv))
    if op == "affine":
        if not rec["do_resampling"]:
            return item
        mode = "nearest" if nearest else rec["mode"]
        # Invertd(nearest_interp) sets align_corners to the string "none": Affine.inverse then builds
        # AffineGrid(align_corners="none") (truthy -> d/(d-1) grid scaling) but grid_sample gets None (= False).
        # RandAffine's inverse ignores align_corners altogether.
        if rec.get("is_rand", False):
            ac_grid = ac_sample = False
        elif nearest:
            ac_grid, ac_sample = True, False
        else:
            ac_grid = ac_sample = bool(rec["align_corners"])
        inv = np.linalg.inv(np.asarray(rec["aff"], dtype=np.float32))  # float32 like linalg_inv on the fp32 matrix
        grid = create_grid_t(rec["orig_size"], torch.float32)
        grid = affine_grid_apply(grid, inv, ac_grid)
        data = resample(item.data, grid, mode, rec["padding_mode"], ac_sample, rec["dtype"])
        return _f32_item(item, data, _compose(item.affine, compute_w_affine(inv, list(item.data.shape[1:]),
                                                                            rec["orig_size"])))
    raise NotImplementedError(op)


def invert(chain, original_sample, transformed_item, orig_key="image", nearest_interp=True, sample_index=0):
    """Replay `chain` ([(name, args, params), ...]) on `original_sample` to record what MONAI's applied_operations
    would hold for `orig_key`, then map `transformed_item` (shape of the transformed orig image; its own affine is
    ignored like Invertd ignores the prediction's meta) back to the original grid."""
    global _TRACE
    sample = dict(original_sample)
    _TRACE = {"__sample_index__": sample_index}
    try:
        for name, a, p in chain:
            res = TRANSFORMS[name](sample, a or {}, p or {})
            sample = res[sample_index] if isinstance(res, list) else res
        records = list(_TRACE.get(orig_key, []))
    finally:
        _TRACE = None
    cur = sample[orig_key]
    if list(transformed_item.data.shape[1:]) != list(cur.data.shape[1:]):
        raise ValueError(f"prediction spatial shape {transformed_item.data.shape[1:]} != transformed "
                         f"{orig_key} shape {cur.data.shape[1:]}")
    item = _new(transformed_item, transformed_item.data, cur.affine.copy(), transformed_item.dtype)
    for rec in reversed(records):
        item = _inv_step(rec, item, nearest_interp)
    return item


def invertd(sample, args, params):
    """Invertd. args: {"keys": ["pred"], "orig_keys": "image" (optional), "nearest_interp": true}.
    params: {"chain": [[transform_name, args, params], ...] (the forward transforms, in order, as given to this
    twin), "orig_key": "image", "sample_index": 0 (which output of a multi-sample transform in the chain)}.
    The sample must hold the ORIGINAL (pre-transform) orig_key item plus anything the chain reads (e.g. a
    CropForegroundd source_key), and the prediction(s) under args.keys with the transformed shape. Each key is
    inverted with the orig_key's transform history and meta; the output replaces the prediction."""
    d = dict(sample)
    keys = ensure_tuple(args["keys"])
    orig_keys = ensure_tuple_rep(args.get("orig_keys", params.get("orig_key", "image")), len(keys))
    nearest = ensure_tuple_rep(args.get("nearest_interp", True), len(keys))
    base = {k: v for k, v in d.items() if k not in keys}
    for key, ok, ni in zip(keys, orig_keys, nearest):
        if key not in d:
            if args.get("allow_missing_keys", False):
                continue
            raise KeyError(key)
        d[key] = invert(params["chain"], base, d[key], ok, bool(ni), int(params.get("sample_index", 0)))
    return d


TRANSFORMS = {
    "EnsureChannelFirstd": ensure_channel_first,
    "Orientationd": orientation,
    "Spacingd": spacing,
    "Resized": resize,
    "SpatialPadd": spatial_pad,
    "DivisiblePadd": divisible_pad,
    "CenterSpatialCropd": center_spatial_crop,
    "CropForegroundd": crop_foreground,
    "RandSpatialCropd": rand_spatial_crop,
    "RandCropByPosNegLabeld": rand_crop_by_pos_neg_label,
    "Flipd": flip,
    "RandFlipd": rand_flip,
    "Rotate90d": rotate90,
    "RandRotate90d": rand_rotate90,
    "Zoomd": zoom,
    "RandZoomd": rand_zoom,
    "Rotated": rotate,
    "RandRotated": rand_rotate,
    "Affined": affine,
    "RandAffined": rand_affine,
    "Rand3DElasticd": rand_3d_elastic,
    "Invertd": invertd,
}
# MONAI aliases
for _n in list(TRANSFORMS):
    if _n.endswith("d"):
        TRANSFORMS.setdefault(_n[:-1] + "D", TRANSFORMS[_n])
        TRANSFORMS.setdefault(_n[:-1] + "Dict", TRANSFORMS[_n])
