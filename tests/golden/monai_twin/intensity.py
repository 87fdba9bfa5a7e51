"""NumPy twin of MONAI's intensity, post-processing and utility dictionary transforms.

Written from the semantics documented in docs/monai-semantics-intensity.md (MONAI 1.3-1.4, MetaTensor
code paths); it is an independent re-implementation, not MONAI code. Each entry of TRANSFORMS is
``fn(sample, args, params) -> new sample``:

* ``sample``: key -> Item (``.data`` float64 [C, *spatial], ``.affine``, ``.dtype`` string) or a plain
  JSON value;
* ``args``: the MONAI dictionary-transform arguments as a config gives them;
* ``params``: values MONAI would draw at random (documented per function). Every random transform
  also accepts ``params["do_transform"] = false`` to model a call where MONAI's ``R.rand() < prob``
  draw said "skip" (default: applied).

Values are computed in float64 and finally rounded/cast to the output dtype MONAI would produce
(float32 rounding, integer truncation toward zero, bool = != 0). Comparisons against scalars round the
scalar to the tensor's precision first, as torch does (``float32_tensor > 0.1`` compares with
float32(0.1)).
"""
import math
import re

import numpy as np

try:  # torch reproduces MONAI's float32 statistics (mean/std/quantile) bit for bit
    import torch as _torch
except ImportError:  # pragma: no cover
    _torch = None

try:  # scipy is used for connected components and hole filling (MONAI uses skimage/scipy there too)
    import scipy.ndimage as _ndi
except ImportError:  # pragma: no cover - Debian's python3-scipy is expected
    _ndi = None

TRANSFORMS = {}

_FLOATS = ("float16", "float32", "float64")
_INT_RANGES = {
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


# ----------------------------------------------------------------------------- registration / keys


def _register(name):
    def deco(fn):
        for alias in (name, name[:-1] + "D", name[:-1] + "Dict"):
            TRANSFORMS[alias] = fn
        return fn

    return deco


def _keys(args):
    k = args["keys"]
    return [k] if isinstance(k, str) else list(k)


def _present(sample, args):
    """Keys to process, honouring allow_missing_keys (MONAI MapTransform.key_iterator)."""
    out = []
    for k in _keys(args):
        if k in sample:
            out.append(k)
        elif not args.get("allow_missing_keys", False):
            raise KeyError(f"key {k!r} not in sample")
    return out


def _rep(v, n, name="argument"):
    """MONAI ensure_tuple_rep: scalar repeated, sequence must have exactly n entries."""
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(f"{name}: sequence must have length {n}, got {len(v)}")
        return list(v)
    return [v] * n


def _new(item, data, dtype=None, affine=None):
    return type(item)(data, item.affine if affine is None else affine, dtype if dtype is not None else item.dtype)


def _item(sample, key):
    it = sample[key]
    if not hasattr(it, "data"):
        raise TypeError(f"sample[{key!r}] is not a tensor item")
    return it


# ----------------------------------------------------------------------------- dtypes

_TORCH_NAMES = {
    "float": "float32", "float32": "float32", "float64": "float64", "double": "float64", "half": "float16",
    "float16": "float16", "int": "int32", "int32": "int32", "long": "int64", "int64": "int64", "short": "int16",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}


def parse_dtype(spec):
    """Config dtype spelling -> canonical name ('float32', 'int16', 'bool', ...) or None.

    "torch.float" is float32 (torch semantics) but "float"/"np.float_"/"$float" follow numpy (float64)."""
    if spec is None:
        return None
    s = str(spec).strip()
    if s.startswith("$"):
        s = s[1:].strip()
    if s.startswith("torch."):
        name = s[len("torch."):]
        if name not in _TORCH_NAMES:
            raise ValueError(f"unsupported torch dtype {spec!r}")
        return _TORCH_NAMES[name]
    for prefix in ("numpy.", "np."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s in ("bool_", "bool"):
        return "bool"
    try:
        name = np.dtype(s).name
    except TypeError as e:
        raise ValueError(f"unsupported dtype {spec!r}") from e
    if name not in _FLOATS and name not in _INT_RANGES and name != "bool":
        raise ValueError(f"unsupported dtype {spec!r}")
    return name


def is_float(dtype):
    return dtype in _FLOATS


def cast_values(data, dtype):
    """Values a tensor of `dtype` would hold after MONAI/torch converts float64 `data` to it."""
    data = np.asarray(data, dtype=np.float64)
    if dtype == "float64":
        return data.copy()
    if dtype == "float32":
        return data.astype(np.float32).astype(np.float64)
    if dtype == "float16":
        return data.astype(np.float16).astype(np.float64)
    if dtype == "bool":
        return (data != 0).astype(np.float64)
    if dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        t = np.trunc(data)
        if dtype == "int64":
            return t
        span = hi - lo + 1
        # out-of-range float->int is undefined behaviour in torch/C++; x86 practice is wrap-around
        return np.mod(t - lo, span) + lo
    raise ValueError(f"unsupported dtype {dtype!r}")


def _scalar_as(dtype, v):
    """A python scalar as torch sees it in `tensor <op> scalar`: rounded to the tensor's float type
    (integer tensors compare in float32 after promotion when the scalar is a float)."""
    v = float(v)
    if dtype == "float64":
        return v
    if dtype == "float16":
        return float(np.float16(v))
    return float(np.float32(v))


def _promote_with_scalars(dtype, *scalars):
    """torch promotion of `tensor(dtype) op python scalars`: float scalars make int tensors float32."""
    if is_float(dtype):
        return dtype
    if any(isinstance(s, float) for s in scalars if s is not None):
        return "float32"
    return "int64" if dtype == "bool" else dtype


def promote_types(dtypes):
    """torch.promote_types over a list of canonical names (torch.cat promotion)."""
    order_f = {"float16": 0, "float32": 1, "float64": 2}
    fl = [d for d in dtypes if is_float(d)]
    if fl:
        return max(fl, key=lambda d: order_f[d])
    ints = [d for d in dtypes if d in _INT_RANGES]
    if not ints:
        return "bool"
    if all(d == "uint8" for d in ints):
        return "uint8"
    signed = [d for d in ints if d != "uint8"]
    width = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
    best = max(signed, key=lambda d: width[d])
    if "uint8" in ints and best == "int8":
        return "int16"
    return best


def _dtype_arg(args, default="float32"):
    """MONAI `dtype` argument: absent -> default, explicit null -> None (keep input dtype)."""
    if "dtype" not in args:
        return default
    return parse_dtype(args["dtype"])


def _do(params):
    return bool(params.get("do_transform", True))


# ----------------------------------------------------------------------------- percentiles / helpers


def percentile(x, q, dtype="float64"):
    """MONAI unify.percentile == torch.quantile / np.percentile 'linear': v[i] + (r-i)(v[i+1]-v[i]),
    r = q/100 * (n-1) over the flattened values. With dtype float32 it is evaluated as MONAI does it
    (torch.quantile in float32 for <= 1e6 voxels, else np.percentile of the float32 array)."""
    q = float(q)
    if q < 0 or q > 100:
        raise ValueError(f"q values must be in [0, 100], got {q}")
    x = np.asarray(x, dtype=np.float64).ravel()
    if dtype == "float32" and _torch is not None:
        x32 = x.astype(np.float32)
        if x32.size <= 1_000_000:
            t = _torch.from_numpy(x32)
            return float(_torch.quantile(t, _torch.tensor(np.float32(q / 100.0))).item())
        return float(np.percentile(x32, q))
    return float(np.percentile(x, q))


def _mean_std_f32(vals):
    """NormalizeIntensity._mean/_std: torch.mean / torch.std(unbiased=False) of a float32 tensor.
    For a constant image the float32 mean can be off by an ulp, making std tiny but non-zero (MONAI
    then returns +-1 instead of 0); torch reproduces that exactly."""
    if _torch is not None:
        t = _torch.from_numpy(np.ascontiguousarray(vals, dtype=np.float32))
        return float(_torch.mean(t).item()), float(_torch.std(t, unbiased=False).item())
    const = vals.max() == vals.min()
    return (float(vals.flat[0]), 0.0) if const else (float(vals.mean()), float(vals.std()))


def _require_float_for_quantile(item):
    if not is_float(item.dtype) and item.data.size <= 1_000_000:
        raise ValueError(
            "MONAI computes percentiles with torch.quantile for tensors of <= 1e6 voxels, which rejects "
            f"integer dtype {item.dtype!r} (RuntimeError in MONAI)"
        )


def _clip(x, lo, hi):
    if lo is None and hi is None:
        raise ValueError("torch.clamp: at least one of min/max must be given (MONAI raises here)")
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return x


# ============================================================================= intensity


def _scale_range(x, in_dtype, a_min, a_max, b_min, b_max, clip, dtype):
    """ScaleIntensityRange on values x (held as in_dtype). Returns (values, out_dtype)."""
    if a_max - a_min == 0:
        # MONAI warns "Divide by zero (a_min == a_max)" and returns img - a_min (+ b_min), no clip, no cast
        out_dtype = _promote_with_scalars(in_dtype, a_min, b_min)
        y = x - a_min if b_min is None else x - a_min + b_min
        return cast_values(y, out_dtype), out_dtype
    y = (x - a_min) / (a_max - a_min)
    if b_min is not None and b_max is not None:
        y = y * (b_max - b_min) + b_min
    if clip:
        y = _clip(y, b_min, b_max)
    out_dtype = dtype or in_dtype  # MONAI: `self.dtype or img.dtype`
    return cast_values(y, out_dtype), out_dtype


@_register("ScaleIntensityRanged")
def scale_intensity_ranged(sample, args, params):
    """ScaleIntensityRanged(a_min, a_max, b_min=None, b_max=None, clip=False, dtype=float32). No params."""
    out = dict(sample)
    a_min, a_max = args["a_min"], args["a_max"]
    b_min, b_max = args.get("b_min"), args.get("b_max")
    dtype = _dtype_arg(args)
    for k in _present(sample, args):
        it = _item(sample, k)
        y, od = _scale_range(it.data, it.dtype, a_min, a_max, b_min, b_max, bool(args.get("clip", False)), dtype)
        out[k] = _new(it, y, od)
    return out


@_register("ScaleIntensityRangePercentilesd")
def scale_intensity_range_percentilesd(sample, args, params):
    """ScaleIntensityRangePercentilesd(lower, upper, b_min, b_max, clip=False, relative=False,
    channel_wise=False, dtype=float32). No params. Output keeps the input dtype (MONAI quirk)."""
    out = dict(sample)
    lower, upper = float(args["lower"]), float(args["upper"])
    for q in (lower, upper):
        if q < 0.0 or q > 100.0:
            raise ValueError("Percentiles must be in the range [0, 100]")
    b_min, b_max = args.get("b_min"), args.get("b_max")
    clip, relative = bool(args.get("clip", False)), bool(args.get("relative", False))
    dtype = _dtype_arg(args)
    if relative:
        if b_min is None or b_max is None:
            raise ValueError("If it is relative, b_min and b_max should not be None.")
        bmin_r = (b_max - b_min) * (lower / 100.0) + b_min
        bmax_r = (b_max - b_min) * (upper / 100.0) + b_min
    else:
        bmin_r, bmax_r = b_min, b_max

    def one(x, in_dtype):
        pd = "float32" if in_dtype != "float64" else "float64"
        a_min, a_max = percentile(x, lower, pd), percentile(x, upper, pd)
        y, _ = _scale_range(x, in_dtype, a_min, a_max, bmin_r, bmax_r, clip, dtype)
        return y

    for k in _present(sample, args):
        it = _item(sample, k)
        _require_float_for_quantile(it)
        if args.get("channel_wise", False):
            y = np.stack([one(c, it.dtype) for c in it.data])
        else:
            y = one(it.data, it.dtype)
        out[k] = _new(it, cast_values(y, it.dtype), it.dtype)
    return out


@_register("NormalizeIntensityd")
def normalize_intensityd(sample, args, params):
    """NormalizeIntensityd(subtrahend=None, divisor=None, nonzero=False, channel_wise=False, dtype=float32).
    No params. Zero std (or a given divisor of 0) divides by 1; nonzero with no non-zero voxel: unchanged."""
    out = dict(sample)
    sub_arg, div_arg = args.get("subtrahend"), args.get("divisor")
    nonzero, channel_wise = bool(args.get("nonzero", False)), bool(args.get("channel_wise", False))
    dtype = _dtype_arg(args)

    def norm(x, sub, div):
        x = cast_values(x, "float32")  # MONAI casts to float32 first
        if nonzero:
            mask = x != 0
            if not mask.any():
                return x
        else:
            mask = np.ones(x.shape, dtype=bool)
        vals = x[mask]
        mean, std = _mean_std_f32(vals)
        if sub is None:
            sub = mean
        if div is None:
            div = std  # population std
        if isinstance(div, (list, tuple)) or isinstance(sub, (list, tuple)):
            raise ValueError("MONAI does not broadcast a list subtrahend/divisor without channel_wise")
        if float(div) == 0.0:
            div = 1.0
        y = x.copy()
        # torch evaluates `float32 tensor - python float` with the scalar rounded to float32
        y[mask] = (vals - _scalar_as("float32", sub)) / _scalar_as("float32", div)
        return y

    for k in _present(sample, args):
        it = _item(sample, k)
        x = it.data
        if channel_wise:
            c = x.shape[0]
            for name, v in (("subtrahend", sub_arg), ("divisor", div_arg)):
                if v is not None and (not isinstance(v, (list, tuple)) or len(v) != c):
                    raise ValueError(f"img has {c} channels, but {name} has the wrong number of components")
            y = np.empty_like(x)
            for i in range(c):
                r = norm(x[i], None if sub_arg is None else sub_arg[i], None if div_arg is None else div_arg[i])
                # MONAI writes each channel back into the *input* tensor: int inputs truncate here
                y[i] = cast_values(r, it.dtype) if not is_float(it.dtype) else r
        else:
            y = norm(x, sub_arg, div_arg)
        od = dtype or it.dtype
        out[k] = _new(it, cast_values(y, od), od)
    return out


def _rescale_array(x, minv, maxv):
    mina, maxa = x.min(), x.max()
    if mina == maxa:
        return x * minv if minv is not None else x
    norm = (x - mina) / (maxa - mina)
    if minv is None or maxv is None:
        return norm
    return norm * (maxv - minv) + minv


@_register("ScaleIntensityd")
def scale_intensityd(sample, args, params):
    """ScaleIntensityd(minv=0.0, maxv=1.0, factor=None, channel_wise=False, dtype=float32). No params.
    Constant image: returns img*minv (img unchanged if minv is None)."""
    out = dict(sample)
    minv = args.get("minv", 0.0)
    maxv = args.get("maxv", 1.0)
    factor = args.get("factor")
    dtype = _dtype_arg(args)
    for k in _present(sample, args):
        it = _item(sample, k)
        x = cast_values(it.data, dtype) if dtype else it.data
        if minv is not None or maxv is not None:
            if args.get("channel_wise", False):
                y = np.stack([_rescale_array(c, minv, maxv) for c in x])
            else:
                y = _rescale_array(x, minv, maxv)
        else:
            y = it.data * (1 + factor) if factor is not None else it.data
        od = dtype or it.dtype
        out[k] = _new(it, cast_values(y, od), od)
    return out


def _factor_range(v, name):
    if isinstance(v, (int, float)):
        return (min(-v, v), max(-v, v))
    if len(v) != 2:
        raise ValueError(f"{name} should be a number or pair of numbers, got {v}.")
    return (min(v), max(v))


@_register("RandScaleIntensityd")
def rand_scale_intensityd(sample, args, params):
    """RandScaleIntensityd(factors, prob=0.1, channel_wise=False, dtype=float32).

    params: {"factor": f} (MONAI draws U(lo, hi), lo/hi = (-f, f) for a scalar `factors`) or, with
    channel_wise, {"factor": [f_c, ...]} one per channel. Result x*(1+f) cast to dtype; when skipped
    (do_transform false) the image is still cast to dtype."""
    _factor_range(args["factors"], "factors")
    dtype = _dtype_arg(args)
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        od = dtype or it.dtype
        if not _do(params):
            out[k] = _new(it, cast_values(it.data, od), od)
            continue
        f = params["factor"]
        if args.get("channel_wise", False):
            fs = list(f) if isinstance(f, (list, tuple)) else [f] * it.data.shape[0]
            if len(fs) != it.data.shape[0]:
                raise ValueError("channel_wise factor list must have one value per channel")
            y = np.stack([c * (1 + fc) for c, fc in zip(it.data, fs)])
        else:
            y = it.data * (1 + float(f))
        out[k] = _new(it, cast_values(y, od), od)
    return out


def _shift(it, offset, safe):
    y = it.data + offset
    if safe and it.dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[it.dtype]
        y = np.clip(y, lo, hi)
    return cast_values(y, it.dtype)


@_register("ShiftIntensityd")
def shift_intensityd(sample, args, params):
    """ShiftIntensityd(offset, safe=False). Output keeps the input dtype (ints truncate). No params."""
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        out[k] = _new(it, _shift(it, float(args["offset"]), bool(args.get("safe", False))))
    return out


@_register("RandShiftIntensityd")
def rand_shift_intensityd(sample, args, params):
    """RandShiftIntensityd(offsets, safe=False, prob=0.1, channel_wise=False; factor_key unsupported).

    params: {"offset": o} (MONAI: U(min(-offsets, offsets), max(...)) or U(min, max) of a pair), or with
    channel_wise {"offset": [o_c, ...]} one per channel. Skipped: input unchanged."""
    _factor_range(args["offsets"], "offsets")
    if args.get("factor_key") is not None:
        raise NotImplementedError("factor_key (offset scaled by a meta-dict value) is not modelled")
    out = dict(sample)
    if not _do(params):
        return out
    o = params["offset"]
    safe = bool(args.get("safe", False))
    for k in _present(sample, args):
        it = _item(sample, k)
        if args.get("channel_wise", False):
            os_ = list(o) if isinstance(o, (list, tuple)) else [o] * it.data.shape[0]
            if len(os_) != it.data.shape[0]:
                raise ValueError("channel_wise offset list must have one value per channel")
            y = np.stack([cast_values(_clip_safe(c + oc, it.dtype, safe), it.dtype) for c, oc in zip(it.data, os_)])
            out[k] = _new(it, y)
        else:
            out[k] = _new(it, _shift(it, float(o), safe))
    return out


def _clip_safe(y, dtype, safe):
    if safe and dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        return np.clip(y, lo, hi)
    return y


@_register("ThresholdIntensityd")
def threshold_intensityd(sample, args, params):
    """ThresholdIntensityd(threshold, above=True, cval=0.0): keep img where img > threshold (above) or
    img < threshold (below), strict; elsewhere cval cast to the input dtype. No params."""
    thr = args["threshold"]
    if not isinstance(thr, (int, float)):
        raise ValueError("threshold must be a float or int number")
    above = bool(args.get("above", True))
    cval = float(args.get("cval", 0.0))
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        t = _scalar_as(it.dtype, thr)
        mask = it.data > t if above else it.data < t
        c = float(cast_values(np.array(cval), it.dtype))
        out[k] = _new(it, np.where(mask, it.data, c))
    return out


def _softplus(z):
    return np.logaddexp(0.0, z)


@_register("ClipIntensityPercentilesd")
def clip_intensity_percentilesd(sample, args, params):
    """ClipIntensityPercentilesd(lower, upper, sharpness_factor=None, channel_wise=False, dtype=float32).
    Hard clip to [percentile(lower), percentile(upper)] (None side = min/max). Soft clip when
    sharpness_factor is set (None side omitted). Output keeps the input dtype. No params."""
    lower, upper = args.get("lower"), args.get("upper")
    sf = args.get("sharpness_factor")
    if lower is None and upper is None:
        raise ValueError("lower or upper percentiles must be provided")
    for q in (lower, upper):
        if q is not None and (q < 0.0 or q > 100.0):
            raise ValueError("Percentiles must be in the range [0, 100]")
    if lower is not None and upper is not None and upper < lower:
        raise ValueError("upper must be greater than or equal to lower")
    if sf is not None and sf <= 0:
        raise ValueError("sharpness_factor must be greater than 0")
    dtype = _dtype_arg(args)

    def one(x, pd):
        if sf is None:
            lo = percentile(x, lower if lower is not None else 0, pd)
            hi = percentile(x, upper if upper is not None else 100, pd)
            return np.clip(x, lo, hi)
        lo = percentile(x, lower, pd) if lower is not None else None
        hi = percentile(x, upper, pd) if upper is not None else None
        a = cast_values(x, dtype) if dtype else x
        v = a
        if lo is not None:
            v = v + _softplus(-sf * (a - lo)) / sf
        if hi is not None:
            v = v - _softplus(sf * (a - hi)) / sf
        return v

    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        _require_float_for_quantile(it)
        pd = "float32" if it.dtype != "float64" else "float64"
        y = np.stack([one(c, pd) for c in it.data]) if args.get("channel_wise", False) else one(it.data, pd)
        out[k] = _new(it, cast_values(y, it.dtype))
    return out


@_register("RandGaussianNoised")
def rand_gaussian_noised(sample, args, params):
    """RandGaussianNoised(prob=0.1, mean=0.0, std=0.1, dtype=float32, sample_std=True).

    MONAI draws sigma ~ U(0, std) (or std when sample_std is false) and noise ~ N(mean, sigma) with the
    FIRST key's shape, shared by all keys. params: {"noise_key": "noise"} (default "noise") names the
    sample item holding that noise array (float64 values; mean already included); alternatively
    {"noise": nested list}. The noise key is removed from the returned sample. Applied: img cast to
    dtype + noise cast to dtype. Skipped: input unchanged (no cast)."""
    out = dict(sample)
    nk = params.get("noise_key", "noise")
    if "noise" in params:
        noise = np.asarray(params["noise"], dtype=np.float64)
    elif nk in sample:
        noise = np.asarray(sample[nk].data, dtype=np.float64)
    else:
        noise = None
    if nk in out and nk not in _keys(args):
        del out[nk]
    if not _do(params):
        return out
    if noise is None:
        raise ValueError("RandGaussianNoised twin needs the drawn noise: params['noise'] or sample[noise_key]")
    dtype = _dtype_arg(args)
    for k in _present(sample, args):
        it = _item(sample, k)
        od = dtype or it.dtype
        y = cast_values(it.data, od) + cast_values(noise, od)
        out[k] = _new(it, cast_values(y, od), od)
    return out


# ----------------------------------------------------------------------------- gaussian smoothing


def gaussian_kernel_1d(sigma, truncated=4.0, approx="erf"):
    """MONAI convutils.gaussian_1d(sigma, truncated, approx, normalize=False) as float64 values
    (sigma is taken as float32, as MONAI stores it in a float tensor)."""
    s = float(np.float32(sigma))
    if truncated <= 0.0:
        raise ValueError("truncated must be positive")
    tail = int(max(s * truncated, 0.5) + 0.5)
    x = np.arange(-tail, tail + 1, dtype=np.float64)
    if approx.lower() == "erf":
        if s == 0.0:
            k = (x == 0).astype(np.float64)
        else:
            t = float(np.float32(0.70710678 / abs(s)))
            erf = np.vectorize(math.erf)
            k = 0.5 * (erf(t * (x + 0.5)) - erf(t * (x - 0.5)))
        return np.clip(k, 0.0, None)
    if approx.lower() == "sampled":
        return np.exp(-0.5 / (s * s) * x**2) / (2.5066282 * s)
    raise NotImplementedError(f"approx={approx!r} is not modelled by the twin")


def gaussian_smooth(x, sigmas, approx="erf"):
    """GaussianFilter: separable correlation along each spatial dim of [C, *spatial], zero padding."""
    nd = x.ndim - 1
    if len(sigmas) != nd:
        raise ValueError(f"need {nd} sigmas, got {len(sigmas)}")
    y = np.asarray(x, dtype=np.float64)
    for d, s in enumerate(sigmas):
        k = gaussian_kernel_1d(s, approx=approx)
        y = _correlate1d_zero(y, k, axis=d + 1)
    return y


def _correlate1d_zero(y, k, axis):
    r = (len(k) - 1) // 2
    n = y.shape[axis]
    pad = [(0, 0)] * y.ndim
    pad[axis] = (r, r)
    p = np.pad(y, pad)
    out = np.zeros_like(y)
    for j, w in enumerate(k):
        sl = [slice(None)] * y.ndim
        sl[axis] = slice(j, j + n)
        out += w * p[tuple(sl)]
    return out


def _sigma_list(sigma, nd):
    if isinstance(sigma, (list, tuple)):
        if len(sigma) != nd:
            raise ValueError(f"sigma needs {nd} values, got {len(sigma)}")
        return [float(s) for s in sigma]
    return [float(sigma)] * nd


@_register("GaussianSmoothd")
def gaussian_smoothd(sample, args, params):
    """GaussianSmoothd(sigma=1.0 or per-spatial-dim list, approx="erf"). Output float32. No params."""
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        sig = _sigma_list(args.get("sigma", 1.0), it.data.ndim - 1)
        y = gaussian_smooth(cast_values(it.data, "float32"), sig, args.get("approx", "erf"))
        out[k] = _new(it, cast_values(y, "float32"), "float32")
    return out


@_register("RandGaussianSmoothd")
def rand_gaussian_smoothd(sample, args, params):
    """RandGaussianSmoothd(sigma_x=(0.25,1.5), sigma_y=..., sigma_z=..., approx="erf", prob=0.1).

    params: {"sigma": [sx, sy, sz]} — MONAI draws sx~U(sigma_x), sy~U(sigma_y), sz~U(sigma_z) (all three,
    always) and uses the first ndim of them; a scalar applies to every dim. Skipped: unchanged."""
    out = dict(sample)
    if not _do(params):
        return out
    s = params["sigma"]
    for k in _present(sample, args):
        it = _item(sample, k)
        nd = it.data.ndim - 1
        sig = [float(v) for v in s[:nd]] if isinstance(s, (list, tuple)) else [float(s)] * nd
        y = gaussian_smooth(cast_values(it.data, "float32"), sig, args.get("approx", "erf"))
        out[k] = _new(it, cast_values(y, "float32"), "float32")
    return out


# ----------------------------------------------------------------------------- contrast / histogram


def adjust_contrast(x, dtype, gamma, invert_image=False, retain_stats=False):
    """AdjustContrast on values x of tensor dtype `dtype`; returns (values, out_dtype)."""
    od = dtype if is_float(dtype) else "float32"
    ft = np.float64 if od == "float64" else np.float32
    x = np.asarray(x, dtype=np.float64)
    if invert_image:
        x = -x
    if retain_stats:
        mn = x.mean()
        sd = x.std(ddof=1)  # torch .std() default is unbiased
    mn0 = x.min()
    rng = x.max() - mn0
    denom = float(ft(rng) + ft(1e-7))  # `img_range + epsilon` evaluated in the tensor's precision
    ret = ((x - mn0) / denom) ** gamma * rng + mn0
    if retain_stats:
        ret = ret - ret.mean()
        ret = ret / (ret.std(ddof=1) + 1e-8)
        ret = sd * ret + mn
    if invert_image:
        ret = -ret
    return cast_values(ret, od), od


@_register("AdjustContrastd")
def adjust_contrastd(sample, args, params):
    """AdjustContrastd(gamma, invert_image=False, retain_stats=False). No params."""
    g = args["gamma"]
    if not isinstance(g, (int, float)):
        raise ValueError("gamma must be a float or int number")
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        y, od = adjust_contrast(it.data, it.dtype, float(g), bool(args.get("invert_image", False)),
                                bool(args.get("retain_stats", False)))
        out[k] = _new(it, y, od)
    return out


@_register("RandAdjustContrastd")
def rand_adjust_contrastd(sample, args, params):
    """RandAdjustContrastd(prob=0.1, gamma=(0.5, 4.5), invert_image=False, retain_stats=False).

    params: {"gamma": g}. MONAI draws g ~ U(0.5, gamma) for a scalar gamma (which must be > 0.5) or
    U(min, max) of a pair. Skipped: unchanged."""
    gamma = args.get("gamma", (0.5, 4.5))
    if isinstance(gamma, (int, float)):
        if gamma <= 0.5:
            raise ValueError("if gamma is a number, must greater than 0.5 and value is picked from (0.5, gamma)")
    elif len(gamma) != 2:
        raise ValueError("gamma should be a number or pair of numbers.")
    out = dict(sample)
    if not _do(params):
        return out
    for k in _present(sample, args):
        it = _item(sample, k)
        y, od = adjust_contrast(it.data, it.dtype, float(params["gamma"]),
                                bool(args.get("invert_image", False)), bool(args.get("retain_stats", False)))
        out[k] = _new(it, y, od)
    return out


@_register("RandHistogramShiftd")
def rand_histogram_shiftd(sample, args, params):
    """RandHistogramShiftd(num_control_points=10, prob=0.1).

    params: {"floating_control_points": [0, ..., 1]} and optionally {"reference_control_points": [...]}
    (default linspace(0, 1, n)). MONAI: n = randint(min, max+1); floating[i] ~ U(floating[i-1],
    floating[i+1]) for i = 1..n-2 in order. Points are in [0, 1] units, scaled to [min, max] of each
    image; constant image unchanged. Output keeps the input dtype."""
    ncp = args.get("num_control_points", 10)
    lims = (ncp, ncp) if isinstance(ncp, int) else (min(ncp), max(ncp))
    if min(lims) <= 2:
        raise ValueError("num_control_points should be greater than or equal to 3")
    out = dict(sample)
    if not _do(params):
        return out
    fp = np.asarray(params["floating_control_points"], dtype=np.float64)
    xp = np.asarray(params.get("reference_control_points", np.linspace(0, 1, len(fp))), dtype=np.float64)
    if len(xp) != len(fp):
        raise ValueError("reference and floating control points differ in length")
    for k in _present(sample, args):
        it = _item(sample, k)
        lo, hi = it.data.min(), it.data.max()
        if lo == hi:
            continue  # MONAI warns and returns the image
        y = np.interp(it.data, xp * (hi - lo) + lo, fp * (hi - lo) + lo)
        out[k] = _new(it, cast_values(y, it.dtype))
    return out


# ============================================================================= post-processing


@_register("Activationsd")
def activationsd(sample, args, params):
    """Activationsd(sigmoid=False, softmax=False, other=None; per-key lists; dim=0 kwarg).
    Softmax over `dim` (channels); output keeps the input dtype. No params."""
    keys = _keys(args)
    n = len(keys)
    sig = _rep(args.get("sigmoid", False), n, "sigmoid")
    soft = _rep(args.get("softmax", False), n, "softmax")
    other = _rep(args.get("other"), n, "other")
    dim = int(args.get("dim", 0))
    out = dict(sample)
    for i, k in enumerate(keys):
        if k not in sample:
            if args.get("allow_missing_keys", False):
                continue
            raise KeyError(k)
        if sig[i] and soft[i]:
            raise ValueError("Incompatible values: sigmoid=True and softmax=True.")
        if other[i] is not None:
            raise NotImplementedError("`other` callables are not modelled by the twin")
        it = _item(sample, k)
        x = cast_values(it.data, "float32")
        if sig[i]:
            x = 1.0 / (1.0 + np.exp(-x))
        if soft[i]:
            e = np.exp(x - x.max(axis=dim, keepdims=True))
            x = e / e.sum(axis=dim, keepdims=True)
        out[k] = _new(it, cast_values(x, it.dtype))
    return out


def one_hot(labels, num_classes, dim=0):
    """monai.networks.one_hot for a [1, *spatial] label: labels truncated toward zero (`.long()`)."""
    lab = np.trunc(np.asarray(labels, dtype=np.float64))
    if lab.shape[dim] != 1:
        raise ValueError("labels should have a channel with length equal to one.")
    if (lab < 0).any() or (lab >= num_classes).any():
        raise ValueError("one_hot: label value outside [0, num_classes) (index error in MONAI)")
    lab = np.squeeze(lab, axis=dim)
    return np.stack([(lab == c).astype(np.float64) for c in range(num_classes)], axis=dim)


@_register("AsDiscreted")
def as_discreted(sample, args, params):
    """AsDiscreted(argmax=False, to_onehot=None, threshold=None, rounding=None; per-key lists;
    kwargs dim=0, keepdim=True, dtype=float32). Order: argmax (keepdim, first max on ties) -> one-hot
    (labels truncated) -> threshold (x >= t) -> torch.round (half to even) -> cast to float32.

    Deprecated Clara 4.x / MONAI 0.8 arguments are honoured: `n_classes` (renamed num_classes) with
    `to_onehot: true`; `threshold_values: true` with `logit_thresh` (default 0.5); false means none.
    No params."""
    keys = _keys(args)
    n = len(keys)
    argmax = _rep(args.get("argmax", False), n, "argmax")
    num_classes = args.get("num_classes", args.get("n_classes"))
    num_classes = _rep(num_classes, n, "num_classes")
    to_onehot = []
    for flag, nc in zip(_rep(args.get("to_onehot"), n, "to_onehot"), num_classes):
        to_onehot.append((nc if flag else None) if isinstance(flag, bool) else flag)
    thr_arg = args.get("threshold", args.get("threshold_values"))
    logit = _rep(args.get("logit_thresh", 0.5), n, "logit_thresh")
    threshold = []
    for flag, lt in zip(_rep(thr_arg, n, "threshold"), logit):
        threshold.append((lt if flag else None) if isinstance(flag, bool) else flag)
    rounding = _rep(args.get("rounding"), n, "rounding")
    dim = int(args.get("dim", 0))
    keepdim = bool(args.get("keepdim", True))
    out_dtype = parse_dtype(args.get("dtype", "float32"))
    out = dict(sample)
    for i, k in enumerate(keys):
        if k not in sample:
            if args.get("allow_missing_keys", False):
                continue
            raise KeyError(k)
        it = _item(sample, k)
        x, cur = it.data.copy(), it.dtype
        if argmax[i]:
            x = np.argmax(x, axis=dim)
            x = np.expand_dims(x, dim).astype(np.float64) if keepdim else x.astype(np.float64)
            cur = "int64"
        if to_onehot[i] is not None:
            if not isinstance(to_onehot[i], int):
                raise ValueError("the number of classes for One-Hot must be an integer.")
            x = one_hot(x, to_onehot[i], dim=dim)
            cur = out_dtype
        if threshold[i] is not None:
            x = (x >= _scalar_as(cur, threshold[i])).astype(np.float64)
            cur = "bool"
        if rounding[i] is not None:
            if rounding[i] != "torchrounding":
                raise ValueError(f"unsupported rounding {rounding[i]!r}")
            if cur == "bool":
                raise ValueError('MONAI raises here: torch.round is not implemented for the bool result of threshold')
            x = np.round(x)
        out[k] = _new(it, cast_values(x, out_dtype), out_dtype)
    return out


def _structure(ndim, connectivity):
    k = ndim if connectivity is None else int(connectivity)
    if k < 1 or k > ndim:
        raise ValueError(f"connectivity must be in 1..{ndim}")
    return _ndi.generate_binary_structure(ndim, k)


def largest_cc_mask(fg, connectivity=None, num_components=1):
    """MONAI get_largest_connected_component_mask on a boolean spatial array."""
    labels, num = _ndi.label(fg, structure=_structure(fg.ndim, connectivity))
    if num <= num_components:
        return fg.astype(bool)
    counts = np.bincount(labels[labels != 0])
    # MONAI: argsort(bincount)[::-1][:n]; with a stable argsort ties go to the higher label number
    keep = np.argsort(counts, kind="stable")[::-1][:num_components]
    return np.isin(labels, keep)


def _unique_labels(x, is_onehot):
    if is_onehot:
        return [i for i in range(x.shape[0]) if x[i].sum() > 0]
    if x.shape[0] != 1:
        raise ValueError(f"If input not one-hotted, should only be 1 channel, got {x.shape[0]}.")
    return [float(v) for v in np.unique(x)]


@_register("KeepLargestConnectedComponentd")
def keep_largest_connected_componentd(sample, args, params):
    """KeepLargestConnectedComponentd(applied_labels=None, is_onehot=None, independent=True,
    connectivity=None (= full), num_components=1). Output keeps the input dtype. No params."""
    if _ndi is None:
        raise RuntimeError("scipy is required")
    al = args.get("applied_labels")
    al = None if al is None else (list(al) if isinstance(al, (list, tuple)) else [al])
    conn = args.get("connectivity")
    ncomp = int(args.get("num_components", 1))
    independent = bool(args.get("independent", True))
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        x = it.data.copy()
        onehot = x.shape[0] > 1 if args.get("is_onehot") is None else bool(args["is_onehot"])
        labels = al if al is not None else [v for v in _unique_labels(x, onehot) if v != 0]
        if independent:
            for lab in labels:
                if onehot:
                    li = int(lab)
                    fg = x[li] > 0
                    mask = largest_cc_mask(fg, conn, ncomp)
                    x[li][fg != mask] = 0
                else:
                    fg = x[0] == _scalar_as(it.dtype, lab)
                    mask = largest_cc_mask(fg, conn, ncomp)
                    x[0][fg != mask] = 0
        elif not onehot:
            fg = np.isin(x[0], [_scalar_as(it.dtype, v) for v in labels])
            mask = largest_cc_mask(fg, conn, ncomp)
            x[0][fg != mask] = 0
        else:
            idx = [int(v) for v in labels]
            fg = (x[idx] == 1).any(0) if idx else np.zeros(x.shape[1:], bool)
            mask = largest_cc_mask(fg, conn, ncomp)
            for li in idx:
                x[li][fg != mask] = 0
        out[k] = _new(it, x)
    return out


@_register("FillHolesd")
def fill_holesd(sample, args, params):
    """FillHolesd(applied_labels=None, connectivity=None (= full)). Labels processed in ascending order
    (MONAI iterates a Python set of small ints). Output keeps the input dtype. No params."""
    if _ndi is None:
        raise RuntimeError("scipy is required")
    al = args.get("applied_labels")
    al = (list(al) if isinstance(al, (list, tuple)) else [al]) if al else None
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        x = it.data.copy()
        onehot = x.shape[0] > 1
        nd = x.ndim - 1
        struct = _ndi.generate_binary_structure(nd, args.get("connectivity") or nd)
        labels = al if al is not None else _unique_labels(x, onehot)
        labels = sorted({v for v in labels if v != 0})
        for lab in labels:
            m = np.logical_not(x[int(lab)]) if onehot else x[0] != _scalar_as(it.dtype, lab)
            reach = _ndi.binary_dilation(np.zeros(x.shape[1:], bool), structure=struct, iterations=-1,
                                         mask=m, origin=0, border_value=1)
            if onehot:
                x[int(lab)] = np.logical_not(reach).astype(np.float64)
            else:
                x[0][np.logical_not(reach)] = lab
        out[k] = _new(it, cast_values(x, it.dtype))
    return out


@_register("LabelToMaskd")
def label_to_maskd(sample, args, params):
    """LabelToMaskd(select_labels, merge_channels=False). Single-channel input -> bool mask of
    img in select_labels; one-hot input -> the selected channels (values and dtype kept);
    merge_channels -> any over channels, [1, *spatial] bool. No params."""
    sel = args["select_labels"]
    sel = list(sel) if isinstance(sel, (list, tuple)) else [sel]
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        x = it.data
        if x.shape[0] > 1:
            d, dt = x[[int(s) for s in sel]], it.dtype
        else:
            d, dt = np.isin(x, [_scalar_as(it.dtype, s) for s in sel]).astype(np.float64), "bool"
        if args.get("merge_channels", False):
            d, dt = (d != 0).any(0)[None].astype(np.float64), "bool"
        out[k] = _new(it, d, dt)
    return out


# ============================================================================= utility


@_register("CastToTyped")
def cast_to_typed(sample, args, params):
    """CastToTyped(dtype=float32, per-key list allowed). No params."""
    keys = _keys(args)
    dts = _rep(args.get("dtype", "float32"), len(keys), "dtype")
    out = dict(sample)
    for k, dt in zip(keys, dts):
        if k not in sample:
            if args.get("allow_missing_keys", False):
                continue
            raise KeyError(k)
        it = _item(sample, k)
        d = parse_dtype(dt)
        out[k] = _new(it, cast_values(it.data, d), d)
    return out


def _ensure_type(sample, args, params):
    keys = _keys(args)
    dts = _rep(args.get("dtype"), len(keys), "dtype")
    out = dict(sample)
    for k, dt in zip(keys, dts):
        if k not in sample:
            if args.get("allow_missing_keys", False):
                continue
            raise KeyError(k)
        it = sample[k]
        if dt is None or not hasattr(it, "data"):
            continue
        d = parse_dtype(dt)
        out[k] = _new(it, cast_values(it.data, d), d)
    return out


for _n in ("EnsureTyped", "ToTensord", "ToNumpyd"):
    _register(_n)(_ensure_type)
_ensure_type.__doc__ = "EnsureTyped / ToTensord / ToNumpyd: values unchanged; an explicit dtype casts. No params."


@_register("ConcatItemsd")
def concat_itemsd(sample, args, params):
    """ConcatItemsd(keys, name, dim=0): concatenate along dim (0 = channels), torch type promotion,
    affine of the first item. No params."""
    items = [sample[k] for k in _present(sample, args)]
    out = dict(sample)
    if not items:
        return out
    dim = int(args.get("dim", 0))
    data = np.concatenate([i.data for i in items], axis=dim)
    out[args["name"]] = _new(items[0], data, promote_types([i.dtype for i in items]))
    return out


@_register("CopyItemsd")
def copy_itemsd(sample, args, params):
    """CopyItemsd(keys, times=1, names=None). names are consumed times-major; MONAI's default names are
    built key-major ("{key}_{i}"), reproduced here including the resulting mix-up. No params."""
    keys = _keys(args)
    times = int(args.get("times", 1))
    if times < 1:
        raise ValueError(f"times must be positive, got {times}.")
    names = args.get("names")
    if names is None:
        names = [f"{k}_{i}" for k in keys for i in range(times)]
    elif isinstance(names, str):
        names = [names]
    if len(names) != len(keys) * times:
        raise ValueError("len(names) must match len(keys) * times")
    out = dict(sample)
    kl = len(keys)
    for i in range(times):
        for k, nk in zip(keys, names[i * kl:(i + 1) * kl]):
            if k not in out:
                if args.get("allow_missing_keys", False):
                    continue
                raise KeyError(k)
            if nk in out:
                raise KeyError(f"Key {nk} already exists in data.")
            v = out[k]
            out[nk] = _new(v, v.data.copy()) if hasattr(v, "data") else _deepcopy(v)
    return out


def _deepcopy(v):
    import copy

    return copy.deepcopy(v)


@_register("DeleteItemsd")
def delete_itemsd(sample, args, params):
    """DeleteItemsd(keys, sep=".", use_re=False): "a.b" deletes b inside nested dict a; with use_re the
    last part is a regex matched with re.search against str(key). No params."""
    keys = _keys(args)
    sep = args.get("sep", ".")
    use_re = _rep(args.get("use_re", False), len(keys), "use_re")

    def delete(parts, d, rx):
        head = parts[0]
        if len(parts) > 1:
            d = dict(d)
            d[head] = delete(parts[1:], d[head], rx)
            return d
        return {k: v for k, v in d.items() if (rx and not re.search(head, f"{k}")) or (not rx and k != head)}

    out = dict(sample)
    for k, rx in zip(keys, use_re):
        out = delete(k.split(sep), out, rx)
    return out


@_register("SqueezeDimd")
def squeeze_dimd(sample, args, params):
    """SqueezeDimd(dim=0, update_meta=True): the size at dim must be 1; a spatial dim (dim > 0) with
    update_meta drops affine row/column dim-1 (4x4 -> 3x3). dim=None squeezes every size-1 dim.
    No params."""
    dim = args.get("dim", 0)
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        x = it.data
        if dim is None:
            out[k] = _new(it, np.squeeze(x))
            continue
        d = dim + x.ndim if dim < 0 else dim
        if x.shape[d] != 1:
            raise ValueError(f"Can only squeeze singleton dimension, got shape {x.shape[d]} of {x.shape}.")
        y = np.squeeze(x, axis=d)
        aff = it.affine
        if args.get("update_meta", True) and d > 0 and aff.ndim == 2:
            h, w = aff.shape
            if h > d:
                aff = aff[np.arange(h) != d - 1]
            if w > d:
                aff = aff[:, np.arange(w) != d - 1]
        out[k] = type(it)(y, aff, it.dtype)
    return out


@_register("FgBgToIndicesd")
def fg_bg_to_indicesd(sample, args, params):
    """FgBgToIndicesd(fg_postfix="_fg_indices", bg_postfix="_bg_indices", image_key=None,
    image_threshold=0.0, output_shape=None). Outputs int64 index items: 1-D flat C-order indices of
    the spatial shape, or [N, len(output_shape)] coordinates when output_shape is given (affine copied
    from the label; meaningless). No params."""
    fpx = args.get("fg_postfix", "_fg_indices")
    bpx = args.get("bg_postfix", "_bg_indices")
    ik = args.get("image_key")
    thr = args.get("image_threshold", 0.0)
    oshape = args.get("output_shape")
    out = dict(sample)
    for k in _present(sample, args):
        it = _item(sample, k)
        lab = it.data[1:] if it.data.shape[0] > 1 else it.data
        fg = (lab != 0).any(0).ravel()
        if ik is not None:
            img = sample[ik]
            valid = (img.data > _scalar_as(img.dtype, thr)).any(0).ravel()
            bg = valid & ~fg
        else:
            bg = ~fg
        fgi, bgi = np.nonzero(fg)[0], np.nonzero(bg)[0]
        if oshape is not None:
            fgi = np.stack(np.unravel_index(fgi, oshape), axis=-1) if len(fgi) else np.zeros((0, len(oshape)))
            bgi = np.stack(np.unravel_index(bgi, oshape), axis=-1) if len(bgi) else np.zeros((0, len(oshape)))
        out[f"{k}{fpx}"] = _new(it, fgi.astype(np.float64), "int64")
        out[f"{k}{bpx}"] = _new(it, bgi.astype(np.float64), "int64")
    return out
