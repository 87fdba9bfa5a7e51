#!/usr/bin/python3
"""PyTorch twin of MONAI 1.3/1.4 networks, losses, metrics, optimizers, LR schedulers and
sliding-window inference, written from a reading of MONAI's sources (see
docs/monai-semantics-nn.md for the specification and the MONAI file each part follows).

Networks reproduce MONAI's module tree exactly, so ``state_dict()`` keys, order and shapes are the
ones a MONAI checkpoint has, and seeded construction consumes torch's RNG in MONAI's order.

Not covered (raise NotImplementedError or are simply absent):
  * UpSample mode "pixelshuffle" (BasicUNet/SegResNet), DynUNet "deconvgroup", SegResNetVAE;
  * losses: other_act (only None), soft_label (MONAI 1.5), GeneralizedWassersteinDiceLoss,
    GeneralizedDiceFocalLoss;
  * metrics: SurfaceDiceMetric(use_subvoxels=True), DiceMetric with sigmoid/softmax helpers,
    accumulation over several iterations (one batch = one buffer);
  * sliding window: output spatial zoom (predictor output size != roi), buffered stitching,
    roi_weight_map / process_fn / with_coord.
MONAI computes FocalLoss, DeepSupervisionLoss and all metric values in float32; this twin keeps the
input dtype (float64 in the runner) except where noted, so compare with ~1e-6 relative tolerance.
"""
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage

# ----------------------------------------------------------------------------------------------
# layer factories (monai/networks/layers/factories.py, layers/utils.py)
# ----------------------------------------------------------------------------------------------


def split_args(args):
    """'name' -> ('name', {}); ('name', {...}) or ['name', {...}] -> ('name', dict)."""
    if isinstance(args, str):
        return args, {}
    if isinstance(args, (tuple, list)) and len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], dict):
        return args[0], dict(args[1])
    raise TypeError(f"layer spec must be 'name' or ('name', {{args}}), got {args!r}")


class Swish(nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return x * torch.sigmoid(self.alpha * x)


class Mish(nn.Module):
    def forward(self, x):
        return x * torch.tanh(F.softplus(x))


ACT = {
    "ELU": nn.ELU, "RELU": nn.ReLU, "LEAKYRELU": nn.LeakyReLU, "PRELU": nn.PReLU, "RELU6": nn.ReLU6,
    "SELU": nn.SELU, "CELU": nn.CELU, "GELU": nn.GELU, "SIGMOID": nn.Sigmoid, "TANH": nn.Tanh,
    "SOFTMAX": nn.Softmax, "LOGSOFTMAX": nn.LogSoftmax, "SWISH": Swish, "MEMSWISH": Swish, "MISH": Mish,
}


def norm_type(name, spatial_dims):
    n = name.upper()
    if n == "INSTANCE":
        return [nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d][spatial_dims - 1]
    if n == "BATCH":
        return [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d][spatial_dims - 1]
    if n == "GROUP":
        return nn.GroupNorm
    if n == "LAYER":
        return nn.LayerNorm
    if n == "LOCALRESPONSE":
        return nn.LocalResponseNorm
    raise NotImplementedError(f"norm {name}")


def conv_type(spatial_dims, transposed=False):
    if transposed:
        return [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][spatial_dims - 1]
    return [nn.Conv1d, nn.Conv2d, nn.Conv3d][spatial_dims - 1]


def get_act_layer(name):
    if name == "":
        return nn.Identity()
    act_name, act_args = split_args(name)
    return ACT[act_name.upper()](**act_args)


def get_norm_layer(name, spatial_dims=1, channels=1):
    if name == "":
        return nn.Identity()
    n, kw = split_args(name)
    t = norm_type(n, spatial_dims)
    if t in (nn.GroupNorm,):
        kw.setdefault("num_channels", channels)
    elif t not in (nn.LayerNorm, nn.LocalResponseNorm):
        kw.setdefault("num_features", channels)
    return t(**kw)


def get_dropout_layer(name, dropout_dim=1):
    if name == "":
        return nn.Identity()
    if isinstance(name, (int, float)):
        dname, dargs = "DROPOUT", {"p": float(name)}
    else:
        dname, dargs = split_args(name)
    dname = dname.upper()
    if dname == "DROPOUT":
        return [nn.Dropout, nn.Dropout2d, nn.Dropout3d][dropout_dim - 1](**dargs)
    if dname == "ALPHADROPOUT":
        return nn.AlphaDropout(**dargs)
    raise NotImplementedError(f"dropout {name}")


def same_padding(kernel_size, dilation=1):
    k = np.atleast_1d(kernel_size)
    d = np.atleast_1d(dilation)
    p = (k - 1) * d / 2
    if np.any((p - np.floor(p)) != 0):
        raise NotImplementedError("same padding needs odd (kernel_size-1)*dilation")
    p = tuple(int(v) for v in p)
    return p if len(p) > 1 else p[0]


def stride_minus_kernel_padding(kernel_size, stride):
    k = np.atleast_1d(kernel_size)
    s = np.atleast_1d(stride)
    out = tuple(int(v) for v in (s - k))
    return out if len(out) > 1 else out[0]


def _tuple_rep(x, n):
    if isinstance(x, (list, tuple)):
        if len(x) != n:
            raise ValueError(f"expected {n} values, got {x}")
        return tuple(x)
    return (x,) * n


# ----------------------------------------------------------------------------------------------
# ADN, Convolution, ResidualUnit, SkipConnection (blocks/acti_norm.py, blocks/convolutions.py)
# ----------------------------------------------------------------------------------------------


class ADN(nn.Sequential):
    """Children named 'N', 'D', 'A' in `ordering` order, each only if its argument is not None."""

    def __init__(self, ordering="NDA", in_channels=None, act="RELU", norm=None, norm_dim=None, dropout=None,
                 dropout_dim=None):
        super().__init__()
        ops = {"A": None, "D": None, "N": None}
        if norm is not None:
            ops["N"] = get_norm_layer(norm, spatial_dims=norm_dim or dropout_dim, channels=in_channels)
        if act is not None:
            ops["A"] = get_act_layer(act)
        if dropout is not None:
            ops["D"] = get_dropout_layer(dropout, dropout_dim=dropout_dim or norm_dim)
        for item in ordering.upper():
            if item not in ops:
                raise ValueError(f"ordering must be a string of N, D, A; got {ordering}")
            if ops[item] is not None:
                self.add_module(item, ops[item])


class Convolution(nn.Sequential):
    """'conv' (Conv or ConvTranspose) then, unless conv_only, 'adn'."""

    def __init__(self, spatial_dims, in_channels, out_channels, strides=1, kernel_size=3, adn_ordering="NDA",
                 act="PRELU", norm="INSTANCE", dropout=None, dropout_dim=1, dilation=1, groups=1, bias=True,
                 conv_only=False, is_transposed=False, padding=None, output_padding=None):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.is_transposed = is_transposed
        if padding is None:
            padding = same_padding(kernel_size, dilation)
        ct = conv_type(spatial_dims, is_transposed)
        if is_transposed:
            if output_padding is None:
                output_padding = stride_minus_kernel_padding(1, strides)
            conv = ct(in_channels, out_channels, kernel_size=kernel_size, stride=strides, padding=padding,
                      output_padding=output_padding, groups=groups, bias=bias, dilation=dilation)
        else:
            conv = ct(in_channels, out_channels, kernel_size=kernel_size, stride=strides, padding=padding,
                      dilation=dilation, groups=groups, bias=bias)
        self.add_module("conv", conv)
        if conv_only:
            return
        self.add_module("adn", ADN(ordering=adn_ordering, in_channels=out_channels, act=act, norm=norm,
                                   norm_dim=spatial_dims, dropout=dropout, dropout_dim=dropout_dim))


class ResidualUnit(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, strides=1, kernel_size=3, subunits=2,
                 adn_ordering="NDA", act="PRELU", norm="INSTANCE", dropout=None, dropout_dim=1, dilation=1,
                 bias=True, last_conv_only=False, padding=None):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Sequential()
        self.residual = nn.Identity()
        if not padding:
            padding = same_padding(kernel_size, dilation)
        sch, sst = in_channels, strides
        subunits = max(1, subunits)
        for su in range(subunits):
            unit = Convolution(spatial_dims, sch, out_channels, strides=sst, kernel_size=kernel_size,
                               adn_ordering=adn_ordering, act=act, norm=norm, dropout=dropout,
                               dropout_dim=dropout_dim, dilation=dilation, bias=bias,
                               conv_only=last_conv_only and su == subunits - 1, padding=padding)
            self.conv.add_module(f"unit{su:d}", unit)
            sch, sst = out_channels, 1
        if np.prod(strides) != 1 or in_channels != out_channels:
            rk, rp = kernel_size, padding
            if np.prod(strides) == 1:
                rk, rp = 1, 0
            self.residual = conv_type(spatial_dims)(in_channels, out_channels, rk, strides, rp, bias=bias)

    def forward(self, x):
        res = self.residual(x)
        cx = self.conv(x)
        return cx + res


class SkipConnection(nn.Module):
    def __init__(self, submodule, dim=1, mode="cat"):
        super().__init__()
        self.submodule = submodule
        self.dim = dim
        self.mode = mode

    def forward(self, x):
        y = self.submodule(x)
        if self.mode == "cat":
            return torch.cat([x, y], dim=self.dim)
        if self.mode == "add":
            return torch.add(x, y)
        if self.mode == "mul":
            return torch.mul(x, y)
        raise NotImplementedError(self.mode)


# ----------------------------------------------------------------------------------------------
# UNet (monai/networks/nets/unet.py)
# ----------------------------------------------------------------------------------------------


class UNet(nn.Module):
    """MONAI UNet: model = Sequential(down, SkipConnection(sub), up), recursively (see doc section 2)."""

    def __init__(self, spatial_dims=None, in_channels=1, out_channels=1, channels=(), strides=(), kernel_size=3,
                 up_kernel_size=3, num_res_units=0, act="PRELU", norm="INSTANCE", dropout=0.0, bias=True,
                 adn_ordering="NDA", dimensions=None):
        super().__init__()
        if dimensions is not None:
            spatial_dims = dimensions
        if len(channels) < 2:
            raise ValueError("the length of `channels` should be no less than 2.")
        if len(strides) - (len(channels) - 1) < 0:
            raise ValueError("the length of `strides` should equal to `len(channels) - 1`.")
        for k in (kernel_size, up_kernel_size):
            if isinstance(k, Sequence) and len(k) != spatial_dims:
                raise ValueError("kernel size sequence length must equal spatial_dims")
        self.dimensions = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = tuple(channels)
        self.strides = tuple(strides)
        self.kernel_size = kernel_size
        self.up_kernel_size = up_kernel_size
        self.num_res_units = num_res_units
        self.act = act
        self.norm = norm
        self.dropout = dropout
        self.bias = bias
        self.adn_ordering = adn_ordering

        def _create_block(inc, outc, chs, sts, is_top):
            c, s = chs[0], sts[0]
            if len(chs) > 2:
                sub = _create_block(c, c, chs[1:], sts[1:], False)  # built first (deepest first)
                upc = c * 2
            else:
                sub = self._get_bottom_layer(c, chs[1])
                upc = c + chs[1]
            down = self._get_down_layer(inc, c, s, is_top)
            up = self._get_up_layer(upc, outc, s, is_top)
            return nn.Sequential(down, SkipConnection(sub), up)

        self.model = _create_block(in_channels, out_channels, self.channels, self.strides, True)

    def _get_down_layer(self, inc, outc, strides, is_top):
        if self.num_res_units > 0:
            return ResidualUnit(self.dimensions, inc, outc, strides=strides, kernel_size=self.kernel_size,
                                subunits=self.num_res_units, act=self.act, norm=self.norm, dropout=self.dropout,
                                bias=self.bias, adn_ordering=self.adn_ordering)
        return Convolution(self.dimensions, inc, outc, strides=strides, kernel_size=self.kernel_size, act=self.act,
                           norm=self.norm, dropout=self.dropout, bias=self.bias, adn_ordering=self.adn_ordering)

    def _get_bottom_layer(self, inc, outc):
        return self._get_down_layer(inc, outc, 1, False)

    def _get_up_layer(self, inc, outc, strides, is_top):
        conv = Convolution(self.dimensions, inc, outc, strides=strides, kernel_size=self.up_kernel_size,
                           act=self.act, norm=self.norm, dropout=self.dropout, bias=self.bias,
                           conv_only=is_top and self.num_res_units == 0, is_transposed=True,
                           adn_ordering=self.adn_ordering)
        if self.num_res_units > 0:
            ru = ResidualUnit(self.dimensions, outc, outc, strides=1, kernel_size=self.kernel_size, subunits=1,
                              act=self.act, norm=self.norm, dropout=self.dropout, bias=self.bias,
                              last_conv_only=is_top, adn_ordering=self.adn_ordering)
            conv = nn.Sequential(conv, ru)
        return conv

    def forward(self, x):
        return self.model(x)


# ----------------------------------------------------------------------------------------------
# UpSample (blocks/upsample.py) and BasicUNet (nets/basic_unet.py)
# ----------------------------------------------------------------------------------------------


class UpSample(nn.Sequential):
    """Modes 'deconv' (child 'deconv') and 'nontrainable' (children 'preconv'?, 'upsample_non_trainable')."""

    def __init__(self, spatial_dims, in_channels=None, out_channels=None, scale_factor=2, kernel_size=None,
                 size=None, mode="deconv", pre_conv="default", interp_mode="linear", align_corners=True, bias=True):
        super().__init__()
        sf = _tuple_rep(scale_factor, spatial_dims)
        mode = str(mode).lower()
        if mode == "deconv":
            if not in_channels:
                raise ValueError("in_channels needed for deconv")
            self.add_module("deconv", conv_type(spatial_dims, True)(
                in_channels=in_channels, out_channels=out_channels or in_channels,
                kernel_size=kernel_size or sf, stride=sf, bias=bias))
        elif mode == "nontrainable":
            if pre_conv == "default" and out_channels != in_channels:
                self.add_module("preconv", conv_type(spatial_dims)(
                    in_channels=in_channels, out_channels=out_channels or in_channels, kernel_size=1, bias=bias))
            elif pre_conv is not None and pre_conv != "default":
                self.add_module("preconv", pre_conv)
            elif pre_conv is None and out_channels != in_channels:
                raise ValueError("in_channels != out_channels needs a pre_conv")
            im = str(interp_mode).lower()
            if im in ("linear", "bilinear", "trilinear"):
                im = ["linear", "bilinear", "trilinear"][spatial_dims - 1]
            self.add_module("upsample_non_trainable", nn.Upsample(
                size=size, scale_factor=None if size else sf, mode=im, align_corners=align_corners))
        else:
            raise NotImplementedError(f"UpSample mode {mode} is not covered by the twin")


class TwoConv(nn.Sequential):
    def __init__(self, spatial_dims, in_chns, out_chns, act, norm, bias, dropout=0.0):
        super().__init__()
        self.add_module("conv_0", Convolution(spatial_dims, in_chns, out_chns, act=act, norm=norm, dropout=dropout,
                                              bias=bias, padding=1))
        self.add_module("conv_1", Convolution(spatial_dims, out_chns, out_chns, act=act, norm=norm, dropout=dropout,
                                              bias=bias, padding=1))


class Down(nn.Sequential):
    def __init__(self, spatial_dims, in_chns, out_chns, act, norm, bias, dropout=0.0):
        super().__init__()
        pool = [nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d][spatial_dims - 1](kernel_size=2)
        convs = TwoConv(spatial_dims, in_chns, out_chns, act, norm, bias, dropout)
        self.add_module("max_pooling", pool)
        self.add_module("convs", convs)


class UpCat(nn.Module):
    def __init__(self, spatial_dims, in_chns, cat_chns, out_chns, act, norm, bias, dropout=0.0, upsample="deconv",
                 pre_conv="default", interp_mode="linear", align_corners=True, halves=True, is_pad=True):
        super().__init__()
        if upsample == "nontrainable" and pre_conv is None:
            up_chns = in_chns
        else:
            up_chns = in_chns // 2 if halves else in_chns
        self.upsample = UpSample(spatial_dims, in_chns, up_chns, 2, mode=upsample, pre_conv=pre_conv,
                                 interp_mode=interp_mode, align_corners=align_corners)
        self.convs = TwoConv(spatial_dims, cat_chns + up_chns, out_chns, act, norm, bias, dropout)
        self.is_pad = is_pad

    def forward(self, x, x_e):
        x_0 = self.upsample(x)
        if x_e is not None:
            if self.is_pad:
                nd = len(x.shape) - 2
                sp = [0] * (nd * 2)
                for i in range(nd):
                    if x_e.shape[-i - 1] != x_0.shape[-i - 1]:
                        sp[i * 2 + 1] = 1
                x_0 = F.pad(x_0, sp, "replicate")
            return self.convs(torch.cat([x_e, x_0], dim=1))
        return self.convs(x_0)


class BasicUNet(nn.Module):
    def __init__(self, spatial_dims=3, in_channels=1, out_channels=2, features=(32, 32, 64, 128, 256, 32),
                 act=("LeakyReLU", {"negative_slope": 0.1, "inplace": True}), norm=("instance", {"affine": True}),
                 bias=True, dropout=0.0, upsample="deconv", dimensions=None):
        super().__init__()
        if dimensions is not None:
            spatial_dims = dimensions
        fea = _tuple_rep(features, 6) if not isinstance(features, (list, tuple)) else tuple(features)
        if len(fea) != 6:
            raise ValueError("features must have 6 entries")
        self.conv_0 = TwoConv(spatial_dims, in_channels, fea[0], act, norm, bias, dropout)
        self.down_1 = Down(spatial_dims, fea[0], fea[1], act, norm, bias, dropout)
        self.down_2 = Down(spatial_dims, fea[1], fea[2], act, norm, bias, dropout)
        self.down_3 = Down(spatial_dims, fea[2], fea[3], act, norm, bias, dropout)
        self.down_4 = Down(spatial_dims, fea[3], fea[4], act, norm, bias, dropout)
        self.upcat_4 = UpCat(spatial_dims, fea[4], fea[3], fea[3], act, norm, bias, dropout, upsample)
        self.upcat_3 = UpCat(spatial_dims, fea[3], fea[2], fea[2], act, norm, bias, dropout, upsample)
        self.upcat_2 = UpCat(spatial_dims, fea[2], fea[1], fea[1], act, norm, bias, dropout, upsample)
        self.upcat_1 = UpCat(spatial_dims, fea[1], fea[0], fea[5], act, norm, bias, dropout, upsample, halves=False)
        self.final_conv = conv_type(spatial_dims)(fea[5], out_channels, kernel_size=1)

    def forward(self, x):
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        x4 = self.down_4(x3)
        u4 = self.upcat_4(x4, x3)
        u3 = self.upcat_3(u4, x2)
        u2 = self.upcat_2(u3, x1)
        u1 = self.upcat_1(u2, x0)
        return self.final_conv(u1)


# ----------------------------------------------------------------------------------------------
# SegResNet (nets/segresnet.py, blocks/segresnet_block.py)
# ----------------------------------------------------------------------------------------------


def _srb_conv(spatial_dims, in_channels, out_channels, kernel_size=3, stride=1, bias=False):
    return Convolution(spatial_dims, in_channels, out_channels, strides=stride, kernel_size=kernel_size, bias=bias,
                       conv_only=True)


def _srb_upsample(spatial_dims, in_channels, upsample_mode="nontrainable", scale_factor=2):
    return UpSample(spatial_dims, in_channels=in_channels, out_channels=in_channels, scale_factor=scale_factor,
                    mode=upsample_mode, interp_mode="linear", align_corners=False)


class ResBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, norm, kernel_size=3, act=("RELU", {"inplace": True})):
        super().__init__()
        if kernel_size % 2 != 1:
            raise AssertionError("kernel_size should be an odd number.")
        self.norm1 = get_norm_layer(norm, spatial_dims=spatial_dims, channels=in_channels)
        self.norm2 = get_norm_layer(norm, spatial_dims=spatial_dims, channels=in_channels)
        self.act = get_act_layer(act)
        self.conv1 = _srb_conv(spatial_dims, in_channels, in_channels, kernel_size=kernel_size)
        self.conv2 = _srb_conv(spatial_dims, in_channels, in_channels, kernel_size=kernel_size)

    def forward(self, x):
        identity = x
        x = self.conv1(self.act(self.norm1(x)))
        x = self.conv2(self.act(self.norm2(x)))
        x += identity
        return x


class SegResNet(nn.Module):
    def __init__(self, spatial_dims=3, init_filters=8, in_channels=1, out_channels=2, dropout_prob=None,
                 act=("RELU", {"inplace": True}), norm=("GROUP", {"num_groups": 8}), norm_name="", num_groups=8,
                 use_conv_final=True, blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), upsample_mode="nontrainable"):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError("`spatial_dims` can only be 2 or 3.")
        self.spatial_dims = spatial_dims
        self.init_filters = init_filters
        self.in_channels = in_channels
        self.blocks_down = tuple(blocks_down)
        self.blocks_up = tuple(blocks_up)
        self.dropout_prob = dropout_prob
        self.act = act
        self.act_mod = get_act_layer(act)
        if norm_name:
            if norm_name.lower() != "group":
                raise ValueError("deprecated norm_name must be 'group'")
            norm = ("group", {"num_groups": num_groups})
        self.norm = norm
        self.upsample_mode = upsample_mode
        self.use_conv_final = use_conv_final
        self.convInit = _srb_conv(spatial_dims, in_channels, init_filters)
        self.down_layers = self._make_down_layers()
        self.up_layers, self.up_samples = self._make_up_layers()
        self.conv_final = self._make_final_conv(out_channels)
        if dropout_prob is not None:
            self.dropout = [nn.Dropout, nn.Dropout2d, nn.Dropout3d][spatial_dims - 1](dropout_prob)

    def _make_down_layers(self):
        layers = nn.ModuleList()
        f = self.init_filters
        for i, item in enumerate(self.blocks_down):
            ch = f * 2 ** i
            pre = _srb_conv(self.spatial_dims, ch // 2, ch, stride=2) if i > 0 else nn.Identity()
            layers.append(nn.Sequential(pre, *[ResBlock(self.spatial_dims, ch, norm=self.norm, act=self.act)
                                               for _ in range(item)]))
        return layers

    def _make_up_layers(self):
        up_layers, up_samples = nn.ModuleList(), nn.ModuleList()
        n_up = len(self.blocks_up)
        for i in range(n_up):
            ch = self.init_filters * 2 ** (n_up - i)
            up_layers.append(nn.Sequential(*[ResBlock(self.spatial_dims, ch // 2, norm=self.norm, act=self.act)
                                             for _ in range(self.blocks_up[i])]))
            up_samples.append(nn.Sequential(*[
                _srb_conv(self.spatial_dims, ch, ch // 2, kernel_size=1),
                _srb_upsample(self.spatial_dims, ch // 2, upsample_mode=self.upsample_mode)]))
        return up_layers, up_samples

    def _make_final_conv(self, out_channels):
        return nn.Sequential(get_norm_layer(self.norm, spatial_dims=self.spatial_dims, channels=self.init_filters),
                             self.act_mod,
                             _srb_conv(self.spatial_dims, self.init_filters, out_channels, kernel_size=1, bias=True))

    def encode(self, x):
        x = self.convInit(x)
        if self.dropout_prob is not None:
            x = self.dropout(x)
        down_x = []
        for down in self.down_layers:
            x = down(x)
            down_x.append(x)
        return x, down_x

    def decode(self, x, down_x):
        for i, (up, upl) in enumerate(zip(self.up_samples, self.up_layers)):
            x = up(x) + down_x[i + 1]
            x = upl(x)
        if self.use_conv_final:
            x = self.conv_final(x)
        return x

    def forward(self, x):
        x, down_x = self.encode(x)
        down_x.reverse()
        return self.decode(x, down_x)


# ----------------------------------------------------------------------------------------------
# DynUNet (nets/dynunet.py, blocks/dynunet_block.py)
# ----------------------------------------------------------------------------------------------


def dyn_get_padding(kernel_size, stride):
    k, s = np.atleast_1d(kernel_size), np.atleast_1d(stride)
    p = (k - s + 1) / 2
    if np.min(p) < 0:
        raise AssertionError("padding value should not be negative")
    p = tuple(int(v) for v in p)
    return p if len(p) > 1 else p[0]


def dyn_get_output_padding(kernel_size, stride, padding):
    k, s, p = np.atleast_1d(kernel_size), np.atleast_1d(stride), np.atleast_1d(padding)
    op = 2 * p + s - k
    if np.min(op) < 0:
        raise AssertionError("out_padding value should not be negative")
    op = tuple(int(v) for v in op)
    return op if len(op) > 1 else op[0]


def dyn_get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=3, stride=1, act="PRELU",
                       norm="INSTANCE", dropout=None, bias=False, conv_only=True, is_transposed=False):
    padding = dyn_get_padding(kernel_size, stride)
    output_padding = dyn_get_output_padding(kernel_size, stride, padding) if is_transposed else None
    return Convolution(spatial_dims, in_channels, out_channels, strides=stride, kernel_size=kernel_size, act=act,
                       norm=norm, dropout=dropout, bias=bias, conv_only=conv_only, is_transposed=is_transposed,
                       padding=padding, output_padding=output_padding)


_LRELU = ("leakyrelu", {"inplace": True, "negative_slope": 0.01})


class UnetResBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, stride, norm_name, act_name=_LRELU,
                 dropout=None):
        super().__init__()
        self.conv1 = dyn_get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=kernel_size,
                                        stride=stride, dropout=dropout, act=None, norm=None, conv_only=False)
        self.conv2 = dyn_get_conv_layer(spatial_dims, out_channels, out_channels, kernel_size=kernel_size, stride=1,
                                        dropout=dropout, act=None, norm=None, conv_only=False)
        self.lrelu = get_act_layer(act_name)
        self.norm1 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)
        self.norm2 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)
        self.downsample = in_channels != out_channels
        if not np.all(np.atleast_1d(stride) == 1):
            self.downsample = True
        if self.downsample:
            self.conv3 = dyn_get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=1, stride=stride,
                                            dropout=dropout, act=None, norm=None, conv_only=False)
            self.norm3 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)

    def forward(self, inp):
        residual = inp
        out = self.norm1(self.conv1(inp))
        out = self.lrelu(out)
        out = self.norm2(self.conv2(out))
        if hasattr(self, "conv3"):
            residual = self.conv3(residual)
        if hasattr(self, "norm3"):
            residual = self.norm3(residual)
        out += residual
        return self.lrelu(out)


class UnetBasicBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, stride, norm_name, act_name=_LRELU,
                 dropout=None):
        super().__init__()
        self.conv1 = dyn_get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=kernel_size,
                                        stride=stride, dropout=dropout, act=None, norm=None, conv_only=False)
        self.conv2 = dyn_get_conv_layer(spatial_dims, out_channels, out_channels, kernel_size=kernel_size, stride=1,
                                        dropout=dropout, act=None, norm=None, conv_only=False)
        self.lrelu = get_act_layer(act_name)
        self.norm1 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)
        self.norm2 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)

    def forward(self, inp):
        out = self.lrelu(self.norm1(self.conv1(inp)))
        return self.lrelu(self.norm2(self.conv2(out)))


class UnetUpBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, stride, upsample_kernel_size, norm_name,
                 act_name=_LRELU, dropout=None, trans_bias=False):
        super().__init__()
        self.transp_conv = dyn_get_conv_layer(spatial_dims, in_channels, out_channels,
                                              kernel_size=upsample_kernel_size, stride=upsample_kernel_size,
                                              dropout=dropout, bias=trans_bias, act=None, norm=None, conv_only=False,
                                              is_transposed=True)
        self.conv_block = UnetBasicBlock(spatial_dims, out_channels + out_channels, out_channels,
                                         kernel_size=kernel_size, stride=1, dropout=dropout, norm_name=norm_name,
                                         act_name=act_name)

    def forward(self, inp, skip):
        out = self.transp_conv(inp)
        out = torch.cat((out, skip), dim=1)
        return self.conv_block(out)


class UnetOutBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, dropout=None):
        super().__init__()
        self.conv = dyn_get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=1, stride=1,
                                       dropout=dropout, bias=True, act=None, norm=None, conv_only=False)

    def forward(self, inp):
        return self.conv(inp)


class DynUNetSkipLayer(nn.Module):
    def __init__(self, index, downsample, upsample, next_layer, heads=None, super_head=None):
        super().__init__()
        self.downsample = downsample
        self.next_layer = next_layer
        self.upsample = upsample
        self.super_head = super_head
        self.heads = heads
        self.index = index

    def forward(self, x):
        downout = self.downsample(x)
        nextout = self.next_layer(downout)
        upout = self.upsample(nextout, downout)
        if self.super_head is not None and self.heads is not None and self.index > 0:
            self.heads[self.index - 1] = self.super_head(upout)
        return upout


class DynUNet(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, strides, upsample_kernel_size,
                 filters=None, dropout=None, norm_name=("INSTANCE", {"affine": True}), act_name=_LRELU,
                 deep_supervision=False, deep_supr_num=1, res_block=False, trans_bias=False):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = list(kernel_size)
        self.strides = list(strides)
        self.upsample_kernel_size = list(upsample_kernel_size)
        self.norm_name = norm_name
        self.act_name = act_name
        self.dropout = dropout
        self.conv_block = UnetResBlock if res_block else UnetBasicBlock
        self.trans_bias = trans_bias
        if filters is not None:
            if len(filters) < len(self.strides):
                raise ValueError("length of filters should be no less than the length of strides.")
            self.filters = list(filters)[: len(self.strides)]
        else:
            self.filters = [min(2 ** (5 + i), 320 if spatial_dims == 3 else 512) for i in range(len(self.strides))]
        self.input_block = self._block(self.in_channels, self.filters[0], self.kernel_size[0], self.strides[0])
        self.downsamples = nn.ModuleList([
            self._block(i, o, k, s) for i, o, k, s in zip(self.filters[:-2], self.filters[1:-1],
                                                          self.kernel_size[1:-1], self.strides[1:-1])])
        self.bottleneck = self._block(self.filters[-2], self.filters[-1], self.kernel_size[-1], self.strides[-1])
        ups = []
        for i, o, k, s, uk in zip(self.filters[1:][::-1], self.filters[:-1][::-1], self.kernel_size[1:][::-1],
                                  self.strides[1:][::-1], self.upsample_kernel_size[::-1]):
            ups.append(UnetUpBlock(spatial_dims, i, o, kernel_size=k, stride=s, upsample_kernel_size=uk,
                                   norm_name=norm_name, act_name=act_name, dropout=dropout, trans_bias=trans_bias))
        self.upsamples = nn.ModuleList(ups)
        self.output_block = UnetOutBlock(spatial_dims, self.filters[0], out_channels, dropout=dropout)
        self.deep_supervision = deep_supervision
        self.deep_supr_num = deep_supr_num
        self.heads = [torch.rand(1)] * self.deep_supr_num  # consumes RNG exactly like MONAI
        if self.deep_supervision:
            self.deep_supervision_heads = nn.ModuleList([
                UnetOutBlock(spatial_dims, self.filters[i + 1], out_channels, dropout=dropout)
                for i in range(self.deep_supr_num)])
            if deep_supr_num >= len(self.strides) - 1:
                raise ValueError("deep_supr_num should be less than the number of up sample layers.")
            if deep_supr_num < 1:
                raise ValueError("deep_supr_num should be larger than 0.")
        self.apply(self.initialize_weights)
        if len(self.kernel_size) != len(self.strides) or len(self.kernel_size) < 3:
            raise ValueError("length of kernel_size and strides should be the same, and no less than 3.")

        def create_skips(index, downsamples, upsamples, bottleneck, superheads=None):
            if len(downsamples) != len(upsamples):
                raise ValueError(f"{len(downsamples)} != {len(upsamples)}")
            if len(downsamples) == 0:
                return bottleneck
            if superheads is None:
                nxt = create_skips(1 + index, downsamples[1:], upsamples[1:], bottleneck)
                return DynUNetSkipLayer(index, downsample=downsamples[0], upsample=upsamples[0], next_layer=nxt)
            flag = False
            if index == 0:
                rest = superheads
            elif len(superheads) > 0:
                flag = True
                rest = superheads[1:]
            else:
                rest = nn.ModuleList()
            nxt = create_skips(1 + index, downsamples[1:], upsamples[1:], bottleneck, superheads=rest)
            if flag:
                return DynUNetSkipLayer(index, downsample=downsamples[0], upsample=upsamples[0], next_layer=nxt,
                                        heads=self.heads, super_head=superheads[0])
            return DynUNetSkipLayer(index, downsample=downsamples[0], upsample=upsamples[0], next_layer=nxt)

        self.skip_layers = create_skips(0, [self.input_block] + list(self.downsamples), self.upsamples[::-1],
                                        self.bottleneck,
                                        superheads=self.deep_supervision_heads if self.deep_supervision else None)

    def _block(self, i, o, k, s):
        return self.conv_block(self.spatial_dims, i, o, kernel_size=k, stride=s, norm_name=self.norm_name,
                               act_name=self.act_name, dropout=self.dropout)

    @staticmethod
    def initialize_weights(module):
        if isinstance(module, (nn.Conv3d, nn.Conv2d, nn.ConvTranspose3d, nn.ConvTranspose2d)):
            module.weight = nn.init.kaiming_normal_(module.weight, a=0.01)
            if module.bias is not None:
                module.bias = nn.init.constant_(module.bias, 0)

    def forward(self, x):
        out = self.skip_layers(x)
        out = self.output_block(out)
        if self.training and self.deep_supervision:
            out_all = [out]
            for fm in self.heads:
                out_all.append(F.interpolate(fm, out.shape[2:]))
            return torch.stack(out_all, dim=1)
        return out


# ----------------------------------------------------------------------------------------------
# AttentionUnet (nets/attentionunet.py)
# ----------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size=3, strides=1, dropout=0.0):
        super().__init__()
        self.conv = nn.Sequential(
            Convolution(spatial_dims, in_channels, out_channels, kernel_size=kernel_size, strides=strides,
                        padding=None, adn_ordering="NDA", act="relu", norm="BATCH", dropout=dropout),
            Convolution(spatial_dims, out_channels, out_channels, kernel_size=kernel_size, strides=1, padding=None,
                        adn_ordering="NDA", act="relu", norm="BATCH", dropout=dropout))

    def forward(self, x):
        return self.conv(x)


class UpConv(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size=3, strides=2, dropout=0.0):
        super().__init__()
        self.up = Convolution(spatial_dims, in_channels, out_channels, strides=strides, kernel_size=kernel_size,
                              act="relu", adn_ordering="NDA", norm="BATCH", dropout=dropout, is_transposed=True)

    def forward(self, x):
        return self.up(x)


class AttentionBlock(nn.Module):
    def __init__(self, spatial_dims, f_int, f_g, f_l, dropout=0.0):
        super().__init__()
        bn = [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d][spatial_dims - 1]

        def c1(i, o):
            return Convolution(spatial_dims, i, o, kernel_size=1, strides=1, padding=0, dropout=dropout,
                               conv_only=True)

        self.W_g = nn.Sequential(c1(f_g, f_int), bn(f_int))
        self.W_x = nn.Sequential(c1(f_l, f_int), bn(f_int))
        self.psi = nn.Sequential(c1(f_int, 1), bn(1), nn.Sigmoid())
        self.relu = nn.ReLU()

    def forward(self, g, x):
        psi = self.relu(self.W_g(g) + self.W_x(x))
        return x * self.psi(psi)


class AttentionLayer(nn.Module):
    def __init__(self, spatial_dims, in_channels, out_channels, submodule, up_kernel_size=3, strides=2, dropout=0.0):
        super().__init__()
        self.attention = AttentionBlock(spatial_dims=spatial_dims, f_g=in_channels, f_l=in_channels,
                                        f_int=in_channels // 2)
        self.upconv = UpConv(spatial_dims, in_channels=out_channels, out_channels=in_channels, strides=strides,
                             kernel_size=up_kernel_size)
        self.merge = Convolution(spatial_dims, 2 * in_channels, in_channels, dropout=dropout)
        self.submodule = submodule

    def forward(self, x):
        fromlower = self.upconv(self.submodule(x))
        att = self.attention(g=fromlower, x=x)
        return self.merge(torch.cat((att, fromlower), dim=1))


class AttentionUnet(nn.Module):
    """monai_version='1.4' (default) passes kernel_size to the ConvBlocks; '1.3' keeps them at 3."""

    def __init__(self, spatial_dims, in_channels, out_channels, channels, strides, kernel_size=3, up_kernel_size=3,
                 dropout=0.0, monai_version="1.4"):
        super().__init__()
        self.dimensions = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = tuple(channels)
        self.strides = tuple(strides)
        self.kernel_size = kernel_size
        self.dropout = dropout
        bk = 3 if str(monai_version) == "1.3" else kernel_size
        self._bk = bk
        head = ConvBlock(spatial_dims, in_channels, self.channels[0], dropout=dropout, kernel_size=bk)
        reduce_channels = Convolution(spatial_dims, self.channels[0], out_channels, kernel_size=1, strides=1,
                                      padding=0, conv_only=True)
        self.up_kernel_size = up_kernel_size

        def _create_block(chs, sts):
            if len(chs) > 2:
                sub = _create_block(chs[1:], sts[1:])
                return AttentionLayer(spatial_dims, chs[0], chs[1], submodule=nn.Sequential(
                    ConvBlock(spatial_dims, chs[0], chs[1], strides=sts[0], dropout=self.dropout, kernel_size=bk),
                    sub), up_kernel_size=self.up_kernel_size, strides=sts[0], dropout=dropout)
            return self._get_bottom_layer(chs[0], chs[1], sts[0])

        encdec = _create_block(self.channels, self.strides)
        self.model = nn.Sequential(head, encdec, reduce_channels)

    def _get_bottom_layer(self, in_channels, out_channels, strides):
        return AttentionLayer(self.dimensions, in_channels, out_channels,
                              submodule=ConvBlock(self.dimensions, in_channels, out_channels, strides=strides,
                                                  dropout=self.dropout, kernel_size=self._bk),
                              up_kernel_size=self.up_kernel_size, strides=strides, dropout=self.dropout)

    def forward(self, x):
        return self.model(x)


NETWORKS = {"UNet": UNet, "Unet": UNet, "BasicUNet": BasicUNet, "BasicUnet": BasicUNet, "SegResNet": SegResNet,
            "DynUNet": DynUNet, "DynUnet": DynUNet, "AttentionUnet": AttentionUnet, "AttentionUNet": AttentionUnet}


def json_args(x):
    """Turn JSON lists of the form ["name", {...}] into MONAI's tuple form, recursively for dicts."""
    if isinstance(x, dict):
        return {k: json_args(v) for k, v in x.items()}
    if isinstance(x, list):
        if len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], dict):
            return (x[0], x[1])
        return [json_args(v) for v in x]
    return x


def build_network(name, args, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return NETWORKS[name](**json_args(args))


# ----------------------------------------------------------------------------------------------
# losses (monai/losses/dice.py, focal_loss.py, tversky.py, ds_loss.py, spatial_mask.py)
# ----------------------------------------------------------------------------------------------


def one_hot(labels, num_classes, dtype=torch.float, dim=1):
    """MONAI networks.utils.one_hot: labels [B, 1, ...] -> [B, num_classes, ...] (float32 by default)."""
    if labels.ndim < dim + 1:
        shape = list(labels.shape) + [1] * (dim + 1 - len(labels.shape))
        labels = torch.reshape(labels, shape)
    sh = list(labels.shape)
    if sh[dim] != 1:
        raise AssertionError("labels should have a channel with length equal to one.")
    sh[dim] = num_classes
    o = torch.zeros(size=sh, dtype=dtype, device=labels.device)
    return o.scatter_(dim=dim, index=labels.long(), value=1)


def _check_reduction(r, allowed=("none", "mean", "sum")):
    r = str(r).lower()
    if r not in allowed:
        raise ValueError(f"Unsupported reduction: {r}")
    return r


def _prepare(input, target, include_background, to_onehot_y, sigmoid, softmax, other_act):
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError("Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None].")
    if sigmoid:
        input = torch.sigmoid(input)
    n = input.shape[1]
    if softmax and n != 1:
        input = torch.softmax(input, 1)
    if other_act is not None:
        input = other_act(input)
    if to_onehot_y and n != 1:
        target = one_hot(target, num_classes=n)
    if not include_background and n != 1:
        target = target[:, 1:]
        input = input[:, 1:]
    if target.shape != input.shape:
        raise AssertionError(f"ground truth has different shape ({target.shape}) from input ({input.shape})")
    return input, target


def _class_weight(weight, num_classes, like):
    w = torch.as_tensor(weight)
    if w.ndim == 0:
        w = torch.as_tensor([float(w)] * num_classes)
    elif w.shape[0] != num_classes:
        raise ValueError("the length of the `weight` sequence should be the same as the number of classes.")
    if w.min() < 0:
        raise ValueError("the value/values of the `weight` should be no less than 0.")
    return w.to(like)


class DiceLoss(nn.Module):
    def __init__(self, include_background=True, to_onehot_y=False, sigmoid=False, softmax=False, other_act=None,
                 squared_pred=False, jaccard=False, reduction="mean", smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None):
        super().__init__()
        self.include_background, self.to_onehot_y = include_background, to_onehot_y
        self.sigmoid, self.softmax, self.other_act = sigmoid, softmax, other_act
        if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
            raise ValueError("Incompatible values: more than 1 of [sigmoid, softmax, other_act].")
        self.squared_pred, self.jaccard = squared_pred, jaccard
        self.reduction = _check_reduction(reduction)
        self.smooth_nr, self.smooth_dr = float(smooth_nr), float(smooth_dr)
        self.batch = batch
        self.weight = weight

    def forward(self, input, target):
        input, target = _prepare(input, target, self.include_background, self.to_onehot_y, self.sigmoid,
                                 self.softmax, self.other_act)
        axes = list(range(2, input.ndim))
        if self.batch:
            axes = [0] + axes
        inter = torch.sum(target * input, dim=axes)
        if self.squared_pred:
            ground_o, pred_o = torch.sum(target ** 2, dim=axes), torch.sum(input ** 2, dim=axes)
        else:
            ground_o, pred_o = torch.sum(target, dim=axes), torch.sum(input, dim=axes)
        den = ground_o + pred_o
        if self.jaccard:
            den = 2.0 * (den - inter)
        f = 1.0 - (2.0 * inter + self.smooth_nr) / (den + self.smooth_dr)
        nc = target.shape[1]
        if self.weight is not None and nc != 1:
            f = f * _class_weight(self.weight, nc, f)
        if self.reduction == "mean":
            return torch.mean(f)
        if self.reduction == "sum":
            return torch.sum(f)
        return f.view(list(f.shape[0:2]) + [1] * (input.ndim - 2))


class MaskedDiceLoss(DiceLoss):
    """Mask multiplies the *raw* input and the target before DiceLoss (activation afterwards)."""

    def forward(self, input, target, mask=None):
        if mask is None:
            return super().forward(input, target)
        if input.shape[0] != mask.shape[0] and mask.shape[0] != 1:
            raise ValueError("batch size of mask must be 1 or equal to input")
        if target.dim() > 1 and mask.shape[1] != 1:
            raise ValueError("mask must have only one channel")
        return super().forward(input * mask, target * mask)


class GeneralizedDiceLoss(nn.Module):
    def __init__(self, include_background=True, to_onehot_y=False, sigmoid=False, softmax=False, other_act=None,
                 w_type="square", reduction="mean", smooth_nr=1e-5, smooth_dr=1e-5, batch=False):
        super().__init__()
        self.include_background, self.to_onehot_y = include_background, to_onehot_y
        self.sigmoid, self.softmax, self.other_act = sigmoid, softmax, other_act
        self.w_type = str(w_type).lower()
        self.reduction = _check_reduction(reduction)
        self.smooth_nr, self.smooth_dr = float(smooth_nr), float(smooth_dr)
        self.batch = batch

    def w_func(self, g):
        if self.w_type == "simple":
            return torch.reciprocal(g)
        if self.w_type == "square":
            return torch.reciprocal(g * g)
        return torch.ones_like(g)

    def forward(self, input, target):
        input, target = _prepare(input, target, self.include_background, self.to_onehot_y, self.sigmoid,
                                 self.softmax, self.other_act)
        axes = list(range(2, input.ndim))
        if self.batch:
            axes = [0] + axes
        inter = torch.sum(target * input, axes)
        ground_o = torch.sum(target, axes)
        pred_o = torch.sum(input, axes)
        den = ground_o + pred_o
        w = self.w_func(ground_o.float())  # MONAI: weights in float32
        infs = torch.isinf(w)
        if self.batch:
            w[infs] = 0.0
            w = w + infs * torch.max(w)
        else:
            w[infs] = 0.0
            w = w + infs * torch.max(w, dim=1)[0].unsqueeze(dim=1)
        rd = 0 if self.batch else 1
        numer = 2.0 * (inter * w).sum(rd, keepdim=True) + self.smooth_nr
        denom = (den * w).sum(rd, keepdim=True) + self.smooth_dr
        f = 1.0 - numer / denom
        if self.reduction == "mean":
            return torch.mean(f)
        if self.reduction == "sum":
            return torch.sum(f)
        return f.view(list(f.shape[0:2]) + [1] * (input.ndim - 2))


class TverskyLoss(nn.Module):
    def __init__(self, include_background=True, to_onehot_y=False, sigmoid=False, softmax=False, other_act=None,
                 alpha=0.5, beta=0.5, reduction="mean", smooth_nr=1e-5, smooth_dr=1e-5, batch=False):
        super().__init__()
        self.include_background, self.to_onehot_y = include_background, to_onehot_y
        self.sigmoid, self.softmax, self.other_act = sigmoid, softmax, other_act
        self.alpha, self.beta = alpha, beta
        self.reduction = _check_reduction(reduction)
        self.smooth_nr, self.smooth_dr = float(smooth_nr), float(smooth_dr)
        self.batch = batch

    def forward(self, input, target):
        input, target = _prepare(input, target, self.include_background, self.to_onehot_y, self.sigmoid,
                                 self.softmax, self.other_act)
        p0, g0 = input, target
        p1, g1 = 1 - p0, 1 - g0
        axes = list(range(2, input.ndim))
        if self.batch:
            axes = [0] + axes
        tp = torch.sum(p0 * g0, axes)
        fp = self.alpha * torch.sum(p0 * g1, axes)
        fn = self.beta * torch.sum(p1 * g0, axes)
        score = 1.0 - (tp + self.smooth_nr) / (tp + fp + fn + self.smooth_dr)
        if self.reduction == "sum":
            return torch.sum(score)
        if self.reduction == "none":
            return score
        return torch.mean(score)


def sigmoid_focal_loss(input, target, gamma=2.0, alpha=None):
    loss = input - input * target - F.logsigmoid(input)
    invprobs = F.logsigmoid(-input * (target * 2 - 1))
    loss = (invprobs * gamma).exp() * loss
    if alpha is not None:
        loss = (target * alpha + (1 - target) * (1 - alpha)) * loss
    return loss


def softmax_focal_loss(input, target, gamma=2.0, alpha=None):
    ls = input.log_softmax(1)
    loss = -(1 - ls.exp()).pow(gamma) * ls * target
    if alpha is not None:
        fac = torch.tensor([1 - alpha] + [alpha] * (target.shape[1] - 1)).to(loss)
        loss = fac.view([-1] + [1] * len(target.shape[2:])) * loss
    return loss


class FocalLoss(nn.Module):
    """MONAI casts input/target to float32; pass keep_dtype=False to do the same (default keeps dtype)."""

    def __init__(self, include_background=True, to_onehot_y=False, gamma=2.0, alpha=None, weight=None,
                 reduction="mean", use_softmax=False, keep_dtype=True):
        super().__init__()
        self.include_background, self.to_onehot_y = include_background, to_onehot_y
        self.gamma, self.alpha, self.weight = gamma, alpha, weight
        self.reduction = _check_reduction(reduction)
        self.use_softmax = use_softmax
        self.keep_dtype = keep_dtype

    def forward(self, input, target):
        n = input.shape[1]
        if self.to_onehot_y and n != 1:
            target = one_hot(target, num_classes=n)
        if not self.include_background and n != 1:
            target = target[:, 1:]
            input = input[:, 1:]
        if target.shape != input.shape:
            raise ValueError(f"ground truth has different shape ({target.shape}) from input ({input.shape})")
        if self.keep_dtype:
            target = target.to(input.dtype)
        else:
            input, target = input.float(), target.float()
        alpha = self.alpha
        if self.use_softmax:
            if not self.include_background and alpha is not None:
                alpha = None  # MONAI drops alpha (with a warning)
            loss = softmax_focal_loss(input, target, self.gamma, alpha)
        else:
            loss = sigmoid_focal_loss(input, target, self.gamma, alpha)
        nc = target.shape[1]
        if self.weight is not None and nc != 1:
            w = _class_weight(self.weight, nc, loss)
            loss = w.view([-1] + [1] * len(target.shape[2:])) * loss
        if self.reduction == "sum":
            return loss.mean(dim=list(range(2, len(target.shape)))).sum()
        if self.reduction == "mean":
            return loss.mean()
        return loss


def _weight_tensor(weight, like):
    if weight is None:
        return None
    return torch.as_tensor(weight).to(like)


class DiceCELoss(nn.Module):
    def __init__(self, include_background=True, to_onehot_y=False, sigmoid=False, softmax=False, other_act=None,
                 squared_pred=False, jaccard=False, reduction="mean", smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ce_weight=None, lambda_dice=1.0, lambda_ce=1.0, label_smoothing=0.0):
        super().__init__()
        reduction = _check_reduction(reduction, ("mean", "sum"))
        weight = ce_weight if ce_weight is not None else weight
        if weight is not None and not include_background:
            dice_weight = list(torch.as_tensor(weight).reshape(-1).tolist())[1:]
        else:
            dice_weight = weight
        self.dice = DiceLoss(include_background=include_background, to_onehot_y=to_onehot_y, sigmoid=sigmoid,
                             softmax=softmax, other_act=other_act, squared_pred=squared_pred, jaccard=jaccard,
                             reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                             weight=dice_weight)
        if lambda_dice < 0.0 or lambda_ce < 0.0:
            raise ValueError("lambda_dice/lambda_ce should be no less than 0.0.")
        self.weight, self.reduction, self.label_smoothing = weight, reduction, label_smoothing
        self.lambda_dice, self.lambda_ce = lambda_dice, lambda_ce

    def ce(self, input, target):
        if input.shape[1] != target.shape[1] and target.shape[1] == 1:
            target = torch.squeeze(target, dim=1).long()
        elif not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return F.cross_entropy(input, target, weight=_weight_tensor(self.weight, input), reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def bce(self, input, target):
        if not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return F.binary_cross_entropy_with_logits(input, target, pos_weight=_weight_tensor(self.weight, input),
                                                  reduction=self.reduction)

    def forward(self, input, target):
        if input.dim() != target.dim():
            raise ValueError("the number of dimensions for input and target should be the same")
        if target.shape[1] != 1 and target.shape[1] != input.shape[1]:
            raise ValueError("number of channels for target is neither 1 nor the same as input")
        d = self.dice(input, target)
        c = self.ce(input, target) if input.shape[1] != 1 else self.bce(input, target)
        return self.lambda_dice * d + self.lambda_ce * c


class DiceFocalLoss(nn.Module):
    def __init__(self, include_background=True, to_onehot_y=False, sigmoid=False, softmax=False, other_act=None,
                 squared_pred=False, jaccard=False, reduction="mean", smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 gamma=2.0, focal_weight=None, weight=None, lambda_dice=1.0, lambda_focal=1.0, alpha=None):
        super().__init__()
        weight = focal_weight if focal_weight is not None else weight
        self.dice = DiceLoss(include_background=include_background, to_onehot_y=False, sigmoid=sigmoid,
                             softmax=softmax, other_act=other_act, squared_pred=squared_pred, jaccard=jaccard,
                             reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, weight=weight)
        self.focal = FocalLoss(include_background=include_background, to_onehot_y=False, gamma=gamma, weight=weight,
                               alpha=alpha, reduction=reduction)
        if lambda_dice < 0.0 or lambda_focal < 0.0:
            raise ValueError("lambda_dice/lambda_focal should be no less than 0.0.")
        self.lambda_dice, self.lambda_focal, self.to_onehot_y = lambda_dice, lambda_focal, to_onehot_y

    def forward(self, input, target):
        if input.dim() != target.dim():
            raise ValueError("the number of dimensions for input and target should be the same")
        if self.to_onehot_y and input.shape[1] != 1:
            target = one_hot(target, num_classes=input.shape[1])
        return self.lambda_dice * self.dice(input, target) + self.lambda_focal * self.focal(input, target)


class DeepSupervisionLoss(nn.Module):
    """MONAI casts each input to float32 and accumulates in float32; the twin keeps the input dtype."""

    def __init__(self, loss, weight_mode="exp", weights=None):
        super().__init__()
        self.loss, self.weight_mode, self.weights = loss, weight_mode, weights

    def get_weights(self, levels=1):
        levels = max(1, levels)
        if self.weights is not None and len(self.weights) >= levels:
            return list(self.weights[:levels])
        if self.weight_mode == "same":
            return [1.0] * levels
        if self.weight_mode == "exp":
            return [max(0.5 ** lv, 0.0625) for lv in range(levels)]
        if self.weight_mode == "two":
            return [1.0 if lv == 0 else 0.5 for lv in range(levels)]
        return [1.0] * levels

    def get_loss(self, input, target):
        if input.shape[2:] != target.shape[2:]:
            target = F.interpolate(target, size=input.shape[2:], mode="nearest-exact")
        return self.loss(input, target)

    def forward(self, input, target):
        if isinstance(input, (list, tuple)):
            w = self.get_weights(levels=len(input))
            total = torch.zeros((), dtype=input[0].dtype)
            for lv in range(len(input)):
                total = total + w[lv] * self.get_loss(input[lv], target)
            return total
        return self.loss(input, target)


LOSSES = {"DiceLoss": DiceLoss, "MaskedDiceLoss": MaskedDiceLoss, "GeneralizedDiceLoss": GeneralizedDiceLoss,
          "TverskyLoss": TverskyLoss, "FocalLoss": FocalLoss, "DiceCELoss": DiceCELoss,
          "DiceFocalLoss": DiceFocalLoss}


def build_loss(name, args):
    args = json_args(dict(args or {}))
    if name == "DeepSupervisionLoss":
        inner = args.pop("loss")
        return DeepSupervisionLoss(build_loss(inner["name"], inner.get("args", {})), **args)
    if name == "CrossEntropyLoss":
        if "weight" in args and args["weight"] is not None:
            args["weight"] = torch.as_tensor(args["weight"], dtype=torch.float64)
        return nn.CrossEntropyLoss(**args)
    if name == "BCEWithLogitsLoss":
        for k in ("weight", "pos_weight"):
            if k in args and args[k] is not None:
                args[k] = torch.as_tensor(args[k], dtype=torch.float64)
        return nn.BCEWithLogitsLoss(**args)
    if args.get("other_act") is not None:
        raise NotImplementedError("other_act is not covered by the twin")
    return LOSSES[name](**args)


# ----------------------------------------------------------------------------------------------
# metrics (monai/metrics/*.py)
# ----------------------------------------------------------------------------------------------


def do_metric_reduction(f, reduction="mean"):
    """Returns (reduced, not_nans) exactly as MONAI's metrics.utils.do_metric_reduction."""
    f = f.clone()
    nans = torch.isnan(f)
    not_nans = ~nans
    t_zero = torch.zeros(1, device=f.device, dtype=f.dtype)
    r = str(reduction).lower()
    if r == "none":
        return f, not_nans.to(f.dtype)
    f[nans] = 0
    if r == "mean":
        nn_ = not_nans.sum(dim=1).to(f.dtype)
        f = torch.where(nn_ > 0, f.sum(dim=1) / nn_, t_zero)
        nn_ = (nn_ > 0).sum(dim=0).to(f.dtype)
        f = torch.where(nn_ > 0, f.sum(dim=0) / nn_, t_zero)
        return f, nn_
    if r == "sum":
        return torch.sum(f, dim=[0, 1]), not_nans.sum(dim=[0, 1]).to(f.dtype)
    if r == "mean_batch":
        nn_ = not_nans.sum(dim=0).to(f.dtype)
        return torch.where(nn_ > 0, f.sum(dim=0) / nn_, t_zero), nn_
    if r == "sum_batch":
        return f.sum(dim=0), not_nans.sum(dim=0).to(f.dtype)
    if r == "mean_channel":
        nn_ = not_nans.sum(dim=1).to(f.dtype)
        return torch.where(nn_ > 0, f.sum(dim=1) / nn_, t_zero), nn_
    if r == "sum_channel":
        return f.sum(dim=1), not_nans.sum(dim=1).to(f.dtype)
    raise ValueError(f"Unsupported reduction: {reduction}")


def ignore_background(y_pred, y):
    y = y[:, 1:] if y.shape[1] > 1 else y
    y_pred = y_pred[:, 1:] if y_pred.shape[1] > 1 else y_pred
    return y_pred, y


def compute_dice(y_pred, y, include_background=True, ignore_empty=True, num_classes=None):
    """DiceMetric buffer [B, C'] (DiceHelper with softmax=False, sigmoid=False)."""
    if y_pred.ndim < 3:
        raise ValueError("y_pred should have at least 3 dimensions")
    n = y_pred.shape[1] if num_classes is None else num_classes
    first = 0 if include_background else 1
    rows = []
    for b in range(y_pred.shape[0]):
        vals = []
        for c in (range(first, n) if n > 1 else [1]):
            xp = (y_pred[b, 0] == c) if y_pred.shape[1] == 1 else y_pred[b, c].bool()
            x = (y[b, 0] == c) if y.shape[1] == 1 else y[b, c]
            y_o = torch.sum(x)
            if y_o > 0:
                vals.append((2.0 * torch.sum(torch.masked_select(x, xp))) / (y_o + torch.sum(xp)))
            elif ignore_empty:
                vals.append(torch.tensor(float("nan"), dtype=torch.float64))
            elif y_o + torch.sum(xp) <= 0:
                vals.append(torch.tensor(1.0, dtype=torch.float64))
            else:
                vals.append(torch.tensor(0.0, dtype=torch.float64))
        rows.append(torch.stack([v.to(torch.float64) for v in vals]))
    return torch.stack(rows, 0)


def prepare_spacing(spacing, batch_size, img_dim):
    if spacing is None or isinstance(spacing, (int, float)):
        return [spacing] * batch_size
    if isinstance(spacing[0], (list, tuple, np.ndarray)):
        if len(spacing) != batch_size or any(len(s) != img_dim for s in spacing):
            raise ValueError("per-batch spacing must have batch_size entries of img_dim numbers")
        return [list(s) for s in spacing]
    if len(spacing) != img_dim:
        raise ValueError("spacing must have img_dim entries")
    return [list(spacing)] * batch_size


def mask_edges(pred, gt):
    """Binary masks (value == 1) -> (edges_pred, edges_gt) = erosion XOR mask (scipy default cross)."""
    pred = np.asarray(pred) == 1
    gt = np.asarray(gt) == 1
    return ndimage.binary_erosion(pred) ^ pred, ndimage.binary_erosion(gt) ^ gt


def surface_distance(a_edges, b_edges, distance_metric="euclidean", spacing=None):
    """Distances (float32 tensor) from each edge voxel of a to the nearest edge voxel of b."""
    if not b_edges.any():
        dis = np.full(a_edges.shape, np.inf, dtype=np.float32)
    else:
        if not a_edges.any():
            return torch.full((int(b_edges.sum()),), float("inf"), dtype=torch.float32)
        if distance_metric == "euclidean":
            dis = ndimage.distance_transform_edt(~b_edges, sampling=spacing)
        elif distance_metric in ("chessboard", "taxicab"):
            dis = ndimage.distance_transform_cdt(~b_edges, metric=distance_metric)
        else:
            raise ValueError(distance_metric)
    return torch.as_tensor(np.asarray(dis, dtype=np.float32)[a_edges])


def _surface_distances(y_pred_bc, y_bc, distance_metric, spacing, symmetric):
    ep, eg = mask_edges(y_pred_bc, y_bc)
    d = [surface_distance(ep, eg, distance_metric, spacing)]
    if symmetric:
        d.append(surface_distance(eg, ep, distance_metric, spacing))
    return ep, eg, d


def _percentile_hd(d, percentile=None):
    if d.shape == (0,):
        return torch.tensor(float("nan"), dtype=torch.float32)
    if not percentile:
        return d.max()
    if 0 <= percentile <= 100:
        return torch.quantile(d, percentile / 100)
    raise ValueError("percentile should be in [0, 100]")


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def compute_hausdorff_distance(y_pred, y, include_background=False, distance_metric="euclidean", percentile=None,
                               directed=False, spacing=None):
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    if y.shape != y_pred.shape:
        raise ValueError("y_pred and y should have same shapes")
    yp, yy = _np(y_pred).astype(np.float32), _np(y).astype(np.float32)
    B, C = yp.shape[:2]
    sp = prepare_spacing(spacing, B, yp.ndim - 2)
    hd = torch.empty((B, C), dtype=torch.float32)
    for b, c in np.ndindex(B, C):
        _, _, ds = _surface_distances(yp[b, c], yy[b, c], distance_metric, sp[b], not directed)
        hd[b, c] = torch.max(torch.stack([_percentile_hd(d, percentile) for d in ds]))
    return hd


def compute_average_surface_distance(y_pred, y, include_background=False, symmetric=False,
                                     distance_metric="euclidean", spacing=None):
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    if y.shape != y_pred.shape:
        raise ValueError("y_pred and y should have same shapes")
    yp, yy = _np(y_pred).astype(np.float32), _np(y).astype(np.float32)
    B, C = yp.shape[:2]
    sp = prepare_spacing(spacing, B, yp.ndim - 2)
    asd = torch.empty((B, C), dtype=torch.float32)
    for b, c in np.ndindex(B, C):
        _, _, ds = _surface_distances(yp[b, c], yy[b, c], distance_metric, sp[b], symmetric)
        sd = torch.cat(ds)
        asd[b, c] = float("nan") if sd.shape == (0,) else sd.mean()
    return asd


def compute_surface_dice(y_pred, y, class_thresholds, include_background=False, distance_metric="euclidean",
                         spacing=None, use_subvoxels=False):
    if use_subvoxels:
        raise NotImplementedError("use_subvoxels is not covered by the twin")
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    if y_pred.ndim not in (4, 5) or y.ndim not in (4, 5):
        raise ValueError("y_pred and y should be one-hot encoded: [B,C,H,W] or [B,C,H,W,D].")
    if y_pred.shape != y.shape:
        raise ValueError("y_pred and y should have same shapes")
    B, C = y_pred.shape[:2]
    if C != len(class_thresholds):
        raise ValueError("number of classes must match the number of class thresholds")
    if any(~np.isfinite(class_thresholds)) or any(np.array(class_thresholds) < 0):
        raise ValueError("class thresholds must be finite and non-negative")
    yp, yy = _np(y_pred).astype(np.float32), _np(y).astype(np.float32)
    sp = prepare_spacing(spacing, B, yp.ndim - 2)
    nsd = torch.empty((B, C), dtype=torch.float32)
    for b, c in np.ndindex(B, C):
        _, _, (dpg, dgp) = _surface_distances(yp[b, c], yy[b, c], distance_metric, sp[b], True)
        complete = len(dpg) + len(dgp)
        correct = torch.sum(dpg <= class_thresholds[c]) + torch.sum(dgp <= class_thresholds[c])
        nsd[b, c] = float("nan") if complete == 0 else correct / complete
    return nsd


CM_NAMES = {
    "tpr": ["sensitivity", "recall", "hit_rate", "true_positive_rate", "tpr"],
    "tnr": ["specificity", "selectivity", "true_negative_rate", "tnr"],
    "ppv": ["precision", "positive_predictive_value", "ppv"],
    "npv": ["negative_predictive_value", "npv"],
    "fnr": ["miss_rate", "false_negative_rate", "fnr"],
    "fpr": ["fall_out", "false_positive_rate", "fpr"],
    "fdr": ["false_discovery_rate", "fdr"],
    "for": ["false_omission_rate", "for"],
    "pt": ["prevalence_threshold", "pt"],
    "ts": ["threat_score", "critical_success_index", "ts", "csi"],
    "acc": ["accuracy", "acc"],
    "ba": ["balanced_accuracy", "ba"],
    "f1": ["f1_score", "f1"],
    "mcc": ["matthews_correlation_coefficient", "mcc"],
    "fm": ["fowlkes_mallows_index", "fm"],
    "bm": ["informedness", "bookmaker_informedness", "bm", "youden_index", "youden"],
    "mk": ["markedness", "deltap", "mk"],
}


def check_confusion_matrix_metric_name(name):
    n = name.replace(" ", "_").lower()
    for k, v in CM_NAMES.items():
        if n in v:
            return k
    raise NotImplementedError(f"metric {name}")


def get_confusion_matrix(y_pred, y, include_background=True):
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    if y.shape != y_pred.shape:
        raise ValueError("y_pred and y should have same shapes")
    B, C = y_pred.shape[:2]
    y_pred = y_pred.reshape(B, C, -1)
    y = y.reshape(B, C, -1)
    tp = ((y_pred + y) == 2).sum(dim=[2]).to(torch.float64)
    tn = ((y_pred + y) == 0).sum(dim=[2]).to(torch.float64)
    p = y.sum(dim=[2]).to(torch.float64)
    n = y.shape[-1] - p
    return torch.stack([tp, n - tn, tn, p - tp], dim=-1)


def compute_confusion_matrix_metric(metric_name, cm):
    m = check_confusion_matrix_metric_name(metric_name)
    if cm.ndim == 1:
        cm = cm.unsqueeze(0)
    tp, fp, tn, fn = cm[..., 0], cm[..., 1], cm[..., 2], cm[..., 3]
    p, n = tp + fn, fp + tn
    nan = torch.tensor(float("nan"), dtype=cm.dtype)

    def safe(a, b):
        return torch.where(b > 0, a / b, nan)

    if m == "tpr":
        num, den = tp, p
    elif m == "tnr":
        num, den = tn, n
    elif m == "ppv":
        num, den = tp, tp + fp
    elif m == "npv":
        num, den = tn, tn + fn
    elif m == "fnr":
        num, den = fn, p
    elif m == "fpr":
        num, den = fp, n
    elif m == "fdr":
        num, den = fp, fp + tp
    elif m == "for":
        num, den = fn, fn + tn
    elif m == "pt":
        tpr, tnr = safe(tp, p), safe(tn, n)
        num, den = torch.sqrt(tpr * (1.0 - tnr)) + tnr - 1.0, tpr + tnr - 1.0
    elif m == "ts":
        num, den = tp, tp + fn + fp
    elif m == "acc":
        num, den = tp + tn, p + n
    elif m == "ba":
        num, den = safe(tp, p) + safe(tn, n), 2.0
    elif m == "f1":
        num, den = tp * 2.0, tp * 2.0 + fn + fp
    elif m == "mcc":
        num, den = tp * tn - fp * fn, torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    elif m == "fm":
        num, den = torch.sqrt(safe(tp, tp + fp) * safe(tp, p)), 1.0
    elif m == "bm":
        num, den = safe(tp, p) + safe(tn, n) - 1.0, 1.0
    else:  # mk
        num, den = safe(tp, tp + fp) + safe(tn, tn + fn) - 1.0, 1.0
    if isinstance(den, torch.Tensor):
        return torch.where(den != 0, num / den, nan)
    return num / den


def run_metric(name, args, y_pred, y, spacing=None):
    """One MONAI metric call + aggregate(). Returns (buffer, aggregate, not_nans)."""
    a = dict(args or {})
    reduction = a.pop("reduction", "mean")
    a.pop("get_not_nans", None)
    a.pop("return_with_label", None)
    if name == "DiceMetric":
        buf = compute_dice(y_pred, y, include_background=a.get("include_background", True),
                           ignore_empty=a.get("ignore_empty", True), num_classes=a.get("num_classes"))
    elif name == "HausdorffDistanceMetric":
        buf = compute_hausdorff_distance(y_pred, y, include_background=a.get("include_background", False),
                                         distance_metric=a.get("distance_metric", "euclidean"),
                                         percentile=a.get("percentile"), directed=a.get("directed", False),
                                         spacing=spacing)
    elif name == "SurfaceDistanceMetric":
        buf = compute_average_surface_distance(y_pred, y, include_background=a.get("include_background", False),
                                               symmetric=a.get("symmetric", False),
                                               distance_metric=a.get("distance_metric", "euclidean"), spacing=spacing)
    elif name == "SurfaceDiceMetric":
        buf = compute_surface_dice(y_pred, y, a["class_thresholds"],
                                   include_background=a.get("include_background", False),
                                   distance_metric=a.get("distance_metric", "euclidean"), spacing=spacing,
                                   use_subvoxels=a.get("use_subvoxels", False))
    elif name == "ConfusionMatrixMetric":
        buf = get_confusion_matrix(y_pred, y, include_background=a.get("include_background", True))
        names = a.get("metric_name", "hit_rate")
        names = [names] if isinstance(names, str) else list(names)
        res, nns = [], []
        for mname in names:
            if a.get("compute_sample", False):
                f, nn_ = do_metric_reduction(compute_confusion_matrix_metric(mname, buf), reduction)
            else:
                f, nn_ = do_metric_reduction(buf, reduction)
                f = compute_confusion_matrix_metric(mname, f)
            res.append(f)
            nns.append(nn_)
        return buf.to(torch.float64), torch.stack(res, 0).to(torch.float64), torch.stack(nns, 0).to(torch.float64)
    else:
        raise NotImplementedError(name)
    buf = buf.to(torch.float64)
    f, nn_ = do_metric_reduction(buf, reduction)
    return buf, f, nn_


# ----------------------------------------------------------------------------------------------
# optimizers and schedulers (monai/optimizers/novograd.py, lr_scheduler.py; nnU-Net polylr.py)
# ----------------------------------------------------------------------------------------------


class Novograd(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0, grad_averaging=False,
                 amsgrad=False):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError("invalid Novograd hyper-parameter")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      grad_averaging=grad_averaging, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros([])  # float32 scalar, as in MONAI
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros([])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                b1, b2 = group["betas"]
                state["step"] += 1
                norm = torch.sum(torch.pow(grad, 2))
                if v == 0:
                    v.copy_(norm)
                else:
                    v.mul_(b2).add_(norm, alpha=1 - b2)
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq"]
                    torch.max(vmax, v, out=vmax)
                    denom = vmax.sqrt().add_(group["eps"])
                else:
                    denom = v.sqrt().add_(group["eps"])
                grad.div_(denom)
                if group["weight_decay"] != 0:
                    grad.add_(p, alpha=group["weight_decay"])
                if group["grad_averaging"]:
                    grad.mul_(1 - b1)
                m.mul_(b1).add_(grad)
                p.add_(m, alpha=-group["lr"])
        return loss


class MonaiLinearLR(torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, optimizer, end_lr, num_iter, last_epoch=-1):
        self.end_lr, self.num_iter = end_lr, num_iter
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        r = self.last_epoch / (self.num_iter - 1)
        return [b + r * (self.end_lr - b) for b in self.base_lrs]


class MonaiExponentialLR(torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, optimizer, end_lr, num_iter, last_epoch=-1):
        self.end_lr, self.num_iter = end_lr, num_iter
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        r = self.last_epoch / (self.num_iter - 1)
        return [b * (self.end_lr / b) ** r for b in self.base_lrs]


class WarmupCosineSchedule(torch.optim.lr_scheduler.LambdaLR):
    def __init__(self, optimizer, warmup_steps, t_total, end_lr=0.0, cycles=0.5, last_epoch=-1, warmup_multiplier=0):
        self.warmup_steps = min(max(warmup_steps, 0), t_total)
        self.warmup_multiplier = warmup_multiplier
        self.t_total, self.cycles, self.end_lr = t_total, cycles, end_lr
        if warmup_multiplier < 0 or warmup_multiplier > 1:
            raise ValueError("warmup_multiplier must be in 0..1 range")
        super().__init__(optimizer, self.lr_lambda, last_epoch)

    def lr_lambda(self, step):
        if step < self.warmup_steps:
            f = float(step) / float(max(1.0, self.warmup_steps))
            return self.warmup_multiplier + (1 - self.warmup_multiplier) * f
        progress = float(step - self.warmup_steps) / float(max(1, self.t_total - self.warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(self.cycles) * 2.0 * progress)))

    def get_lr(self):
        cur = [b * lm(self.last_epoch) for lm, b in zip(self.lr_lambdas, self.base_lrs)]
        if self.last_epoch < self.warmup_steps:
            return cur
        return [max(self.end_lr, c) for c in cur]


class PolyLRScheduler(torch.optim.lr_scheduler._LRScheduler):
    """nnU-Net v2 PolyLRScheduler: lr = initial_lr * (1 - step/max_steps)^exponent."""

    def __init__(self, optimizer, initial_lr, max_steps, exponent=0.9, current_step=None):
        self.optimizer, self.initial_lr, self.max_steps, self.exponent = optimizer, initial_lr, max_steps, exponent
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1, False)

    def step(self, current_step=None):
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        new_lr = self.initial_lr * (1 - current_step / self.max_steps) ** self.exponent
        for g in self.optimizer.param_groups:
            g["lr"] = new_lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]


def build_optimizer(name, params, args):
    a = json_args(dict(args or {}))
    if "betas" in a:
        a["betas"] = tuple(a["betas"])
    if name == "Novograd":
        return Novograd(params, **a)
    return getattr(torch.optim, name)(params, **a)


def build_scheduler(name, optimizer, args, base_lr):
    a = dict(args or {})
    sch = torch.optim.lr_scheduler
    if name in ("LinearLR", "MonaiLinearLR") and ("end_lr" in a or "num_iter" in a or name == "MonaiLinearLR"):
        return MonaiLinearLR(optimizer, **a)
    if name in ("ExponentialLR", "MonaiExponentialLR") and ("end_lr" in a or name == "MonaiExponentialLR"):
        return MonaiExponentialLR(optimizer, **a)
    if name == "WarmupCosineSchedule":
        return WarmupCosineSchedule(optimizer, **a)
    if name in ("PolyLR", "PolyLRScheduler"):
        a.setdefault("initial_lr", base_lr)
        if "max_epochs" in a:
            a["max_steps"] = a.pop("max_epochs")
        return PolyLRScheduler(optimizer, **a)
    if name in ("TorchLinearLR", "TorchExponentialLR"):
        name = name[5:]
    return getattr(sch, name)(optimizer, **a)


def scheduler_lrs(name, args, base_lr, steps, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    s = build_scheduler(name, opt, args, base_lr)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
            s.step(metrics[i])
        else:
            s.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


# ----------------------------------------------------------------------------------------------
# sliding window inference (monai/inferers/utils.py, monai/data/utils.py)
# ----------------------------------------------------------------------------------------------


def compute_importance_map(patch_size, mode="constant", sigma_scale=0.125, dtype=torch.float32):
    mode = str(mode).lower()
    if mode == "constant":
        imp = torch.ones(patch_size, dtype=torch.float)
    elif mode == "gaussian":
        ss = _tuple_rep(sigma_scale, len(patch_size))
        sigmas = [i * s for i, s in zip(patch_size, ss)]
        imp = None
        for i in range(len(patch_size)):
            x = torch.arange(start=-(patch_size[i] - 1) / 2.0, end=(patch_size[i] - 1) / 2.0 + 1, dtype=torch.float)
            x = torch.exp(x ** 2 / (-2 * sigmas[i] ** 2))
            imp = imp.unsqueeze(-1) * x[(None,) * i] if i > 0 else x
    else:
        raise ValueError(f"Unsupported mode: {mode}")
    mnz = max(torch.min(imp).item(), 1e-3)
    return torch.clamp_(imp.to(torch.float), min=mnz).to(dtype)


def get_scan_interval(image_size, roi_size, overlap):
    out = []
    for i, o in enumerate(overlap):
        if roi_size[i] == image_size[i]:
            out.append(int(roi_size[i]))
        else:
            iv = int(roi_size[i] * (1 - o))
            out.append(iv if iv > 0 else 1)
    return tuple(out)


def dense_patch_slices(image_size, patch_size, scan_interval):
    nd = len(image_size)
    patch_size = tuple(min(ms, ps or ms) for ms, ps in zip(image_size, patch_size))
    scan_num = []
    for i in range(nd):
        if scan_interval[i] == 0:
            scan_num.append(1)
        else:
            num = int(math.ceil(float(image_size[i]) / scan_interval[i]))
            sd = next((d for d in range(num) if d * scan_interval[i] + patch_size[i] >= image_size[i]), None)
            scan_num.append(sd + 1 if sd is not None else 1)
    starts = []
    for d in range(nd):
        ds = []
        for idx in range(scan_num[d]):
            st = idx * scan_interval[d]
            st -= max(st + patch_size[d] - image_size[d], 0)
            ds.append(st)
        starts.append(ds)
    out = np.asarray([x.flatten() for x in np.meshgrid(*starts, indexing="ij")]).T
    return [tuple(slice(int(s), int(s) + patch_size[d]) for d, s in enumerate(x)) for x in out]


def sliding_window_inference(inputs, roi_size, sw_batch_size, predictor, overlap=0.25, mode="constant",
                             sigma_scale=0.125, padding_mode="constant", cval=0.0):
    nd = inputs.ndim - 2
    overlap = _tuple_rep(overlap, nd)
    for o in overlap:
        if o < 0 or o >= 1:
            raise ValueError("overlap must be >= 0 and < 1")
    dtype = inputs.dtype
    B, _, *isz = inputs.shape
    roi = tuple(isz[i] if (roi_size[i] is None or roi_size[i] <= 0) else int(roi_size[i]) for i in range(nd)) \
        if isinstance(roi_size, (list, tuple)) else (int(roi_size),) * nd
    image_size = tuple(max(isz[i], roi[i]) for i in range(nd))
    pad = []
    for k in range(inputs.ndim - 1, 1, -1):
        diff = max(roi[k - 2] - inputs.shape[k], 0)
        pad.extend([diff // 2, diff - diff // 2])
    if any(pad):
        if padding_mode == "constant":
            inputs = F.pad(inputs, pad=pad, mode="constant", value=cval)
        else:
            inputs = F.pad(inputs, pad=pad, mode=padding_mode)
    si = get_scan_interval(image_size, roi, overlap)
    slices = dense_patch_slices(image_size, roi, si)
    num_win = len(slices)
    total = num_win * B
    vps = tuple(min(ms, ps) for ms, ps in zip(image_size, roi))
    w = compute_importance_map(vps, mode=mode, sigma_scale=sigma_scale, dtype=dtype)[None, None]
    out, count = None, None
    for g in range(0, total, sw_batch_size):
        rng = range(g, min(g + sw_batch_size, total))
        us = [[slice(i // num_win, i // num_win + 1), slice(None)] + list(slices[i % num_win]) for i in rng]
        win = torch.cat([inputs[tuple(s)] for s in us])
        pred = predictor(win)
        if tuple(pred.shape[2:]) != tuple(roi):
            raise NotImplementedError("predictor output size must equal roi_size in the twin")
        if out is None:
            out = torch.zeros([B, pred.shape[1], *image_size], dtype=dtype)
            count = torch.zeros([1, 1, *image_size], dtype=dtype)
            for s in slices:
                count[(slice(None), slice(None), *s)] += w
        pred = pred * w
        for s, p in zip(us, pred):
            out[tuple(s)] += p
    out = out / count
    if any(pad):
        fs = []
        for sp in range(nd):
            si_ = nd - sp - 1
            fs.insert(0, slice(pad[sp * 2], pad[sp * 2] + isz[si_]))
        out = out[(slice(None), slice(None), *fs)]
    return out
