#!/usr/bin/python3
"""Self-checks of the networks/losses/metrics/optimizer/scheduler/sliding-window twin (nn_twin.py) and
its runner (run_nn.py) against hand-computed values, MONAI's documented numbers and MONAI's unit-test
values. Run: /usr/bin/python3 tests/golden/monai_twin/test_nn_twin.py
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nn_twin as T  # noqa: E402

torch.set_num_threads(1)


def close(a, b, tol=1e-6):
    a = np.asarray(a.detach() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, atol=tol, rtol=tol, equal_nan=True), (a, b)


def nparams(net):
    return sum(p.numel() for p in net.parameters())


# ------------------------------------------------------------------------------------------ networks

SPLEEN_FIRST = [
    "model.0.conv.unit0.conv.weight", "model.0.conv.unit0.conv.bias", "model.0.conv.unit0.adn.N.weight",
    "model.0.conv.unit0.adn.N.bias", "model.0.conv.unit0.adn.N.running_mean", "model.0.conv.unit0.adn.N.running_var",
    "model.0.conv.unit0.adn.N.num_batches_tracked", "model.0.conv.unit0.adn.A.weight",
    "model.0.conv.unit1.conv.weight", "model.0.conv.unit1.conv.bias", "model.0.conv.unit1.adn.N.weight",
    "model.0.conv.unit1.adn.N.bias", "model.0.conv.unit1.adn.N.running_mean", "model.0.conv.unit1.adn.N.running_var",
    "model.0.conv.unit1.adn.N.num_batches_tracked", "model.0.conv.unit1.adn.A.weight",
    "model.0.residual.weight", "model.0.residual.bias", "model.1.submodule.0.conv.unit0.conv.weight",
]


def test_spleen_unet():
    net = T.UNet(3, 1, 2, (16, 32, 64, 128, 256), (2, 2, 2, 2), num_res_units=2, norm="BATCH")
    assert nparams(net) == 4808917, nparams(net)
    sd = net.state_dict()
    keys = list(sd)
    assert len(keys) == 148, len(keys)
    assert keys[: len(SPLEEN_FIRST)] == SPLEEN_FIRST, keys[:20]
    bottom = "model." + "1.submodule." * 4
    assert list(sd[bottom + "conv.unit0.conv.weight"].shape) == [256, 128, 3, 3, 3]
    assert list(sd[bottom + "residual.weight"].shape) == [256, 128, 1, 1, 1]
    assert list(sd["model.1.submodule.1.submodule.1.submodule.2.0.conv.weight"].shape) == [384, 64, 3, 3, 3]
    assert list(sd["model.0.residual.weight"].shape) == [16, 1, 3, 3, 3]
    assert "model.2.0.adn.N.weight" in sd and "model.2.0.adn.A.weight" in sd  # top ConvT keeps its ADN
    assert keys[-2:] == ["model.2.1.conv.unit0.conv.weight", "model.2.1.conv.unit0.conv.bias"]  # conv_only
    assert not any(k.startswith("model.2.1.conv.unit0.adn") for k in keys)
    assert not any(k.startswith("model.2.1.residual") for k in keys)
    assert sd["model.0.conv.unit0.adn.N.num_batches_tracked"].dtype == torch.int64
    assert float(sd["model.0.conv.unit0.adn.A.weight"]) == 0.25
    net.eval()
    with torch.no_grad():
        y = net(torch.randn(1, 1, 16, 16, 16))
    assert y.shape == (1, 2, 16, 16, 16)


def test_unet_variants():
    # num_res_units=0: top transposed conv is conv_only; default INSTANCE norm has no state
    net = T.UNet(2, 3, 4, (8, 16, 32), (2, 2))
    keys = list(net.state_dict())
    assert keys == ["model.0.conv.weight", "model.0.conv.bias", "model.0.adn.A.weight",
                    "model.1.submodule.0.conv.weight", "model.1.submodule.0.conv.bias",
                    "model.1.submodule.0.adn.A.weight", "model.1.submodule.1.submodule.conv.weight",
                    "model.1.submodule.1.submodule.conv.bias", "model.1.submodule.1.submodule.adn.A.weight",
                    "model.1.submodule.2.conv.weight", "model.1.submodule.2.conv.bias",
                    "model.1.submodule.2.adn.A.weight", "model.2.conv.weight", "model.2.conv.bias"], keys
    sd = net.state_dict()
    assert list(sd["model.1.submodule.2.conv.weight"].shape) == [48, 8, 3, 3]  # ConvT (16+32) -> 8
    assert list(sd["model.2.conv.weight"].shape) == [16, 4, 3, 3]
    # convolution padding / output_padding
    c = net.model[2].conv
    assert c.padding == (1, 1) and c.output_padding == (1, 1) and c.stride == (2, 2)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 16, 12)).shape == (2, 4, 16, 12)
    # tuple forms, group norm, relu, dropout, no bias, num_res_units=1, ordering
    net = T.UNet(3, 1, 4, (8, 16, 16), (2, 1), num_res_units=1, act=("leakyrelu", {"negative_slope": 0.2}),
                 norm=("group", {"num_groups": 4}), dropout=0.1, bias=False, adn_ordering="ADN")
    sd = net.state_dict()
    assert "model.0.conv.unit0.conv.bias" not in sd
    assert list(sd["model.0.conv.unit0.adn.N.weight"].shape) == [8]
    assert list(net.model[0].conv.unit0.adn._modules) == ["A", "D", "N"]
    # stride-1 level with equal channels: residual is a 1x1 conv only if channels differ
    bottom = net.model[1].submodule[1].submodule
    assert isinstance(bottom, T.ResidualUnit) and isinstance(bottom.residual, torch.nn.Identity)  # 16->16, s 1
    r = net.model[1].submodule[0].residual  # 8 -> 16 with stride 1: 1x1 conv, no padding
    assert r.kernel_size == (1, 1, 1) and r.padding == (0, 0, 0) and r.bias is None
    r = net.model[0].residual  # 1 -> 8 with stride 2: kernel 3, same padding
    assert r.kernel_size == (3, 3, 3) and r.padding == (1, 1, 1) and r.stride == (2, 2, 2)
    # seeded construction is reproducible
    torch.manual_seed(3)
    a = T.UNet(2, 1, 2, (4, 8), (2,), num_res_units=2).state_dict()
    torch.manual_seed(3)
    b = T.UNet(2, 1, 2, (4, 8), (2,), num_res_units=2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_attention_unet():
    # numbers from MONAI issue #7726 / PR #7734 (torchinfo Total params)
    kw = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(2, 4, 8, 16), strides=(2, 2, 2),
              kernel_size=5, up_kernel_size=5)
    assert nparams(T.AttentionUnet(**kw)) == 18846
    assert nparams(T.AttentionUnet(monai_version="1.3", **kw)) == 10686
    net = T.AttentionUnet(2, 1, 3, (4, 8, 16), (2, 2))
    keys = list(net.state_dict())
    assert keys[0] == "model.0.conv.0.conv.weight"
    assert "model.1.attention.W_g.0.conv.weight" in keys and "model.1.attention.psi.1.running_var" in keys
    assert "model.1.upconv.up.conv.weight" in keys and "model.1.merge.adn.A.weight" in keys
    assert "model.1.submodule.1.submodule.conv.0.conv.weight" in keys
    assert keys[-2:] == ["model.2.conv.weight", "model.2.conv.bias"]
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_basic_unet_segresnet():
    net = T.BasicUNet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 4, 8, 8, 16, 4))
    keys = list(net.state_dict())
    assert keys[:4] == ["conv_0.conv_0.conv.weight", "conv_0.conv_0.conv.bias", "conv_0.conv_0.adn.N.weight",
                        "conv_0.conv_0.adn.N.bias"]
    assert "upcat_4.upsample.deconv.weight" in keys and "down_1.convs.conv_1.conv.weight" in keys
    assert keys[-2:] == ["final_conv.weight", "final_conv.bias"]
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, 33, 32)).shape == (1, 3, 33, 32)  # odd size handled by replicate pad
    net = T.SegResNet(spatial_dims=2, init_filters=8, in_channels=2, out_channels=3)
    keys = list(net.state_dict())
    assert keys[0] == "convInit.conv.weight" and "down_layers.1.0.conv.weight" in keys
    assert "down_layers.0.1.norm1.weight" in keys and "up_samples.0.0.conv.weight" in keys
    assert keys[-4:] == ["conv_final.0.weight", "conv_final.0.bias", "conv_final.2.conv.weight",
                         "conv_final.2.conv.bias"]
    assert not any(".bias" in k for k in keys if k.endswith("conv1.conv.bias"))
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 2, 16, 16)).shape == (1, 3, 16, 16)
    assert nparams(T.SegResNet()) == 1176186  # default SegResNet, as listed in published benchmark tables
    net = T.SegResNet(spatial_dims=3, init_filters=8, upsample_mode="deconv")
    assert "up_samples.0.1.deconv.weight" in net.state_dict()


def test_dynunet():
    k = [[3, 3], [3, 3], [3, 3], [3, 3]]
    s = [[1, 1], [2, 2], [2, 2], [2, 2]]
    net = T.DynUNet(2, 1, 2, k, s, s[1:], filters=(4, 8, 16, 32), deep_supervision=True, deep_supr_num=2,
                    res_block=True)
    sd = net.state_dict()
    keys = list(sd)
    assert keys[0] == "input_block.conv1.conv.weight"
    assert "skip_layers.downsample.conv1.conv.weight" in keys  # registered twice
    assert sd["skip_layers.downsample.conv1.conv.weight"].data_ptr() == sd["input_block.conv1.conv.weight"].data_ptr()
    assert "deep_supervision_heads.1.conv.conv.bias" in keys and "upsamples.0.transp_conv.conv.weight" in keys
    assert "upsamples.0.transp_conv.conv.bias" not in keys  # trans_bias False
    assert float(sd["output_block.conv.conv.bias"].abs().sum()) == 0.0  # init: bias 0
    x = torch.randn(1, 1, 16, 16)
    net.train()
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 3, 2, 16, 16)
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (1, 2, 16, 16)
    assert T.dyn_get_padding(3, 2) == 1 and T.dyn_get_output_padding(2, 2, 0) == 0
    assert T.dyn_get_padding([3, 1], [2, 1]) == (1, 0)


# ------------------------------------------------------------------------------------------ losses

def test_dice_losses():
    x = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]], dtype=torch.float64)
    t = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]], dtype=torch.float64)
    close(T.DiceLoss(sigmoid=True, smooth_nr=1e-6, smooth_dr=1e-6)(x, t), 0.307576, 1e-5)  # MONAI unit test
    s1, s0 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))
    inter, sp, sg = 2 * s1 + s0, 2 * s1 + 2 * s0, 3.0
    close(T.DiceLoss(sigmoid=True, jaccard=True, smooth_nr=0, smooth_dr=0)(x, t),
          1 - 2 * inter / (2 * (sp + sg - inter)))
    close(T.DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=0, smooth_dr=0)(x, t),
          1 - 2 * inter / (2 * s1 ** 2 + 2 * s0 ** 2 + 3))
    # softmax, one-hot, include_background, weight, batch, reduction none shape
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    lab = torch.randint(0, 3, (2, 1, 4, 5)).double()
    p = torch.softmax(x, 1)
    g = F.one_hot(lab[:, 0].long(), 3).permute(0, 3, 1, 2).double()
    ref = 1 - (2 * (p * g).sum((2, 3)) + 1e-5) / (p.sum((2, 3)) + g.sum((2, 3)) + 1e-5)
    close(T.DiceLoss(softmax=True, to_onehot_y=True, reduction="none")(x, lab), ref[..., None, None])
    close(T.DiceLoss(softmax=True, to_onehot_y=True, include_background=False, weight=[2.0, 0.5])(x, lab),
          (ref[:, 1:] * torch.tensor([2.0, 0.5], dtype=torch.float64)).mean())
    refb = 1 - (2 * (p * g).sum((0, 2, 3)) + 1e-5) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + 1e-5)
    out = T.DiceLoss(softmax=True, to_onehot_y=True, batch=True, reduction="none")(x, lab)
    assert out.shape == (3, 1, 1)
    close(out[:, 0, 0], refb)
    close(T.DiceLoss(softmax=True, to_onehot_y=True, reduction="sum")(x, lab), ref.sum())
    # gradient check of the composed loss
    xg = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: T.DiceLoss(softmax=True, to_onehot_y=True)(z, lab), (xg,))
    # masked dice: mask applied before the sigmoid (masked logits become sigmoid(0) = 0.5)
    x1 = torch.tensor([[[[2.0, -3.0, 1.0]]]], dtype=torch.float64)
    t1 = torch.tensor([[[[1.0, 0.0, 1.0]]]], dtype=torch.float64)
    m = torch.tensor([[[[1.0, 1.0, 0.0]]]], dtype=torch.float64)
    close(T.MaskedDiceLoss(sigmoid=True)(x1, t1, mask=m),
          T.DiceLoss(sigmoid=True)(torch.tensor([[[[2.0, -3.0, 0.0]]]], dtype=torch.float64),
                                   torch.tensor([[[[1.0, 0.0, 0.0]]]], dtype=torch.float64)))


def test_generalized_dice_tversky():
    p = torch.tensor([[[[0.8, 0.2]], [[0.2, 0.8]], [[0.0, 0.0]]]], dtype=torch.float64)  # [1, 3, 1, 2]
    g = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]], dtype=torch.float64)
    # square weights: 1/1, 1/1, inf -> 0 -> max = 1
    inter = torch.tensor([0.8, 0.8, 0.0])
    den = torch.tensor([2.0, 2.0, 0.0])
    w = torch.tensor([1.0, 1.0, 1.0])
    close(T.GeneralizedDiceLoss()(p, g), 1 - (2 * (inter * w).sum() + 1e-5) / ((den * w).sum() + 1e-5))
    out = T.GeneralizedDiceLoss(reduction="none")(p, g)
    assert out.shape == (1, 1, 1, 1)
    # Tversky alpha=0.3 (FP), beta=0.7 (FN), none -> [B, C]
    tv = T.TverskyLoss(alpha=0.3, beta=0.7, reduction="none", smooth_nr=0, smooth_dr=0)(p[:, :2], g[:, :2])
    assert tv.shape == (1, 2)
    close(tv[0, 0], 1 - 0.8 / (0.8 + 0.3 * 0.2 + 0.7 * 0.2))


def test_focal():
    z = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    one = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    v = math.log(2) * 0.25
    close(T.FocalLoss(gamma=2.0)(z, one), v)
    close(T.FocalLoss(gamma=2.0, reduction="sum")(z, one), v)  # 'sum' = mean over space, then sum
    close(T.FocalLoss(gamma=2.0, alpha=0.25)(z, one), v * 0.25)
    close(T.FocalLoss(gamma=2.0, alpha=0.25)(z, 0 * one), v * 0.75)
    close(T.FocalLoss(gamma=0.0, reduction="none")(z + 1.5, one), F.binary_cross_entropy_with_logits(z + 1.5, one,
                                                                                                      reduction="none"))
    # softmax form: 2 equal logits, target class 0
    x = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    t = torch.tensor([[[[1.0]], [[0.0]]]], dtype=torch.float64)
    close(T.FocalLoss(use_softmax=True)(x, t), v / 2)
    close(T.FocalLoss(use_softmax=True, alpha=0.25)(x, t), v * 0.75 / 2)
    close(T.FocalLoss(use_softmax=True, include_background=False, alpha=0.25)(x, t), 0.0)
    close(T.FocalLoss(weight=[1.0, 3.0], reduction="none")(x, t)[0, 1], 3 * T.FocalLoss(reduction="none")(x, t)[0, 1])
    # float32 MONAI mode agrees
    close(T.FocalLoss(keep_dtype=False)(x + 0.3, t), T.FocalLoss()(x + 0.3, t), 1e-6)


def test_dice_ce_focal_ds():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    lab = torch.randint(0, 3, (2, 1, 4, 4)).double()
    w = [1.0, 2.0, 0.5]
    loss = T.DiceCELoss(to_onehot_y=True, softmax=True, weight=w, lambda_dice=0.7, lambda_ce=0.3,
                        label_smoothing=0.1, include_background=False)
    ce = F.cross_entropy(x, lab[:, 0].long(), weight=torch.tensor(w, dtype=torch.float64), label_smoothing=0.1)
    d = T.DiceLoss(to_onehot_y=True, softmax=True, include_background=False, weight=w[1:])(x, lab)
    close(loss(x, lab), 0.7 * d + 0.3 * ce)
    # one-hot target: CE with class probabilities
    oh = T.one_hot(lab, 3).double()
    close(T.DiceCELoss(softmax=True)(x, oh), T.DiceLoss(softmax=True)(x, oh) + F.cross_entropy(x, oh))
    # single channel -> BCE with pos_weight
    x1, t1 = x[:, :1], (lab > 0).double()
    close(T.DiceCELoss(sigmoid=True, weight=[2.0])(x1, t1), T.DiceLoss(sigmoid=True, weight=[2.0])(x1, t1) +
          F.binary_cross_entropy_with_logits(x1, t1, pos_weight=torch.tensor([2.0], dtype=torch.float64)))
    # DiceFocal: focal is the sigmoid form even with softmax=True
    df = T.DiceFocalLoss(to_onehot_y=True, softmax=True, gamma=2.0, lambda_focal=0.5)(x, lab)
    close(df, T.DiceLoss(to_onehot_y=True, softmax=True)(x, lab) + 0.5 * T.FocalLoss(to_onehot_y=True)(x, lab))
    # deep supervision: exp weights, target resized by nearest-exact
    ds = T.DeepSupervisionLoss(T.DiceLoss(softmax=True, to_onehot_y=True))
    lo = x[:, :, ::2, ::2].contiguous()
    ref = T.DiceLoss(softmax=True, to_onehot_y=True)(x, lab) + 0.5 * T.DiceLoss(softmax=True, to_onehot_y=True)(
        lo, F.interpolate(lab, size=(2, 2), mode="nearest-exact"))
    close(ds([x, lo], lab), ref)
    assert ds.get_weights(6) == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]


# ------------------------------------------------------------------------------------------ metrics

def test_dice_metric_and_reduction():
    y = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    y[:, 1, :2] = 1
    y[:, 0, 2:] = 1
    buf = T.compute_dice(y, y)
    close(buf[:, :2], np.ones((2, 2)))
    assert torch.isnan(buf[:, 2]).all()  # empty ground truth -> NaN
    nb = T.compute_dice(y, y, ignore_empty=False)
    close(nb[:, 2], [1.0, 1.0])  # empty gt and empty pred -> 1
    yp = y.clone()
    yp[0, 2, 0, 0] = 1
    close(T.compute_dice(yp, y, ignore_empty=False)[:, 2], [0.0, 1.0])  # empty gt, non-empty pred -> 0
    pred = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    pred[0, 1, 0, :] = 1
    gt = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    gt[0, 1, :, 0] = 1
    close(T.compute_dice(pred, gt, include_background=False), [[0.5]])
    # label maps with num_classes
    lp = torch.tensor([[[[0, 1], [2, 2]]]], dtype=torch.float64)
    lg = torch.tensor([[[[0, 1], [2, 1]]]], dtype=torch.float64)
    close(T.compute_dice(lp, lg, num_classes=3), [[1.0, 2 / 3, 2 / 3]])
    # single channel: compared as == 1, include_background irrelevant
    close(T.compute_dice(gt[:, 1:], gt[:, 1:], include_background=False), [[1.0]])
    # reductions
    nan = float("nan")
    f = torch.tensor([[1.0, nan], [nan, nan], [0.5, 0.25]], dtype=torch.float64)
    close(T.do_metric_reduction(f, "mean")[0], [(1.0 + 0.375) / 2])  # shape [1] as in MONAI
    close(T.do_metric_reduction(f, "mean_batch")[0], [0.75, 0.25])
    close(T.do_metric_reduction(f, "sum")[0], 1.75)
    close(T.do_metric_reduction(f, "mean_channel")[0], [1.0, 0.0, 0.375])
    close(T.do_metric_reduction(f, "sum_batch")[1], [2.0, 1.0])
    close(T.do_metric_reduction(torch.full((2, 2), nan, dtype=torch.float64), "mean")[0], [0.0])  # all NaN -> 0


def _box(shape, lo, hi):
    a = np.zeros(shape)
    a[tuple(slice(l, h) for l, h in zip(lo, hi))] = 1
    return a


def test_surface_metrics():
    g = _box((12, 12), (3, 3), (8, 8))
    p = _box((12, 12), (4, 3), (9, 8))  # shifted by 1 along axis 0
    yp = torch.tensor(np.stack([1 - p, p])[None])
    yy = torch.tensor(np.stack([1 - g, g])[None])
    close(T.compute_hausdorff_distance(yp, yy), [[1.0]])
    close(T.compute_hausdorff_distance(yp, yy, spacing=[2.0, 1.0]), [[2.0]])
    close(T.compute_hausdorff_distance(yy, yy), [[0.0]])
    # reference edge/distance computation in plain scipy
    from scipy import ndimage
    ep = ndimage.binary_erosion(p == 1) ^ (p == 1)
    eg = ndimage.binary_erosion(g == 1) ^ (g == 1)
    d1 = ndimage.distance_transform_edt(~eg)[ep]
    d2 = ndimage.distance_transform_edt(~ep)[eg]
    close(T.compute_average_surface_distance(yp, yy), [[d1.mean()]], 1e-6)
    close(T.compute_average_surface_distance(yp, yy, symmetric=True), [[np.concatenate([d1, d2]).mean()]], 1e-6)
    d = np.concatenate([d1])
    close(T.compute_hausdorff_distance(yp, yy, percentile=95, directed=True),
          [[np.percentile(d.astype(np.float32), 95)]], 1e-5)
    nsd = T.compute_surface_dice(yp, yy, [0.5])
    close(nsd, [[(np.sum(d1 <= 0.5) + np.sum(d2 <= 0.5)) / (len(d1) + len(d2))]])
    # empty cases: both empty -> NaN, one empty -> inf (HD/ASD) and 0 (NSD)
    z = np.zeros((12, 12))
    ye = torch.tensor(np.stack([1 - z, z])[None])
    assert torch.isnan(T.compute_hausdorff_distance(ye, ye)).all()
    assert torch.isnan(T.compute_average_surface_distance(ye, ye)).all()
    assert torch.isnan(T.compute_surface_dice(ye, ye, [1.0])).all()
    assert torch.isinf(T.compute_hausdorff_distance(yp, ye)).all()
    assert torch.isinf(T.compute_hausdorff_distance(ye, yy, directed=True)).all()
    assert torch.isinf(T.compute_average_surface_distance(ye, yy)).all()
    close(T.compute_surface_dice(yp, ye, [1.0]), [[0.0]])
    # image border voxels are edges (border_value 0)
    full = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    e, _ = T.mask_edges(full[0, 0].numpy(), full[0, 0].numpy())
    assert e.sum() == 16


def test_confusion_matrix():
    yp = torch.tensor([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], dtype=torch.float64).reshape(2, 1, 4)
    yy = torch.tensor([[[1, 0, 1, 0]], [[0, 0, 0, 0]]], dtype=torch.float64).reshape(2, 1, 4)
    cm = T.get_confusion_matrix(yp, yy)
    close(cm, [[[1, 1, 1, 1]], [[0, 1, 3, 0]]])
    close(T.compute_confusion_matrix_metric("sensitivity", cm), [[0.5], [nan_()]])
    close(T.compute_confusion_matrix_metric("f1", cm), [[0.5], [0.0]])
    close(T.compute_confusion_matrix_metric("accuracy", cm), [[0.5], [0.75]])
    mcc = T.compute_confusion_matrix_metric("mcc", cm)
    close(mcc[0], [0.0])
    assert torch.isnan(mcc[1]).all()
    buf, agg, _ = T.run_metric("ConfusionMatrixMetric", {"metric_name": ["recall", "precision"]}, yp, yy)
    # mean of the confusion matrix over (channel, batch) = (0.5, 1, 2, 0.5) -> tpr 0.5, ppv 1/3
    close(agg, [[0.5], [1 / 3]])  # MONAI returns shape [1] per name (1-D matrix is unsqueezed)
    _, aggs, _ = T.run_metric("ConfusionMatrixMetric", {"metric_name": "recall", "compute_sample": True}, yp, yy)
    close(aggs, [[0.5]])  # "mean" returns shape [1] (torch.where with a [1]-shaped zero)


def nan_():
    return float("nan")


# ------------------------------------------------------------------------------------------ optim

def test_novograd():
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)
    p = torch.nn.Parameter(w0.clone())
    opt = T.Novograd([p], lr=0.1, weight_decay=0.01)
    p.grad = g.clone()
    opt.step()
    v = np.float32(0.25)
    m1 = g / (float(np.sqrt(v)) + 1e-8) + 0.01 * w0
    close(p.detach(), w0 - 0.1 * m1, 1e-9)
    w1 = p.detach().clone()
    p.grad = g.clone() * 2
    opt.step()
    v2 = np.float32(np.float32(0.98) * v + np.float32(0.02) * np.float32(1.0))
    m2 = 0.9 * m1 + (2 * g) / (float(np.sqrt(v2)) + 1e-8) + 0.01 * w1
    close(p.detach(), w1 - 0.1 * m2, 1e-7)


def test_schedulers():
    lrs = T.scheduler_lrs("WarmupCosineSchedule", {"warmup_steps": 2, "t_total": 6, "end_lr": 0.01}, 0.1, 7)
    close(lrs, [0.0, 0.05, 0.1, 0.1 * 0.5 * (1 + math.cos(math.pi * 0.25)), 0.05,
                0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)), 0.01,
                0.1 * 0.5 * (1 + math.cos(math.pi * 1.25))])  # past t_total the cosine rises again
    close(T.scheduler_lrs("PolyLR", {"max_steps": 4}, 0.2, 3), [0.2 * (1 - k / 4) ** 0.9 for k in range(4)])
    close(T.scheduler_lrs("LinearLR", {"end_lr": 1.0, "num_iter": 5}, 0.2, 2), [0.2, 0.4, 0.6])
    close(T.scheduler_lrs("ExponentialLR", {"end_lr": 1.0, "num_iter": 3}, 0.01, 2), [0.01, 0.1, 1.0])
    close(T.scheduler_lrs("ExponentialLR", {"gamma": 0.5}, 1.0, 2), [1.0, 0.5, 0.25])
    close(T.scheduler_lrs("StepLR", {"step_size": 2, "gamma": 0.1}, 1.0, 4), [1.0, 1.0, 0.1, 0.1, 0.01])
    close(T.scheduler_lrs("PolynomialLR", {"total_iters": 4, "power": 0.9}, 0.2, 5),
          [0.2 * (1 - min(k, 4) / 4) ** 0.9 for k in range(6)])
    close(T.scheduler_lrs("ReduceLROnPlateau", {"patience": 1, "factor": 0.5}, 1.0, 5, [1.0, 1.0, 1.0, 1.0, 1.0]),
          [1.0, 1.0, 1.0, 0.5, 0.5, 0.25])


# ------------------------------------------------------------------------------------------ sliding window

def test_sliding_window():
    assert T.get_scan_interval((10, 7), (4, 7), (0.25, 0.25)) == (3, 7)
    sl = T.dense_patch_slices((10, 7), (4, 7), (3, 7))
    assert [s[0].start for s in sl] == [0, 3, 6] and all(s[1] == slice(0, 7) for s in sl)
    imp = T.compute_importance_map((5, 4), "gaussian", 0.125)
    x0 = np.arange(5) - 2.0
    x1 = np.arange(4) - 1.5
    ref = np.exp(-x0[:, None] ** 2 / (2 * 0.625 ** 2)) * np.exp(-x1[None] ** 2 / (2 * 0.5 ** 2))
    ref = np.maximum(ref.astype(np.float32), max(ref.astype(np.float32).min(), 1e-3))
    close(imp, ref, 1e-6)
    torch.manual_seed(0)
    x = torch.randn(2, 1, 11, 9, dtype=torch.float64)
    for mode in ("constant", "gaussian"):
        y = T.sliding_window_inference(x, (4, 5), 3, lambda z: z, overlap=0.5, mode=mode)
        close(y, x, 1e-12)
    small = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    y = T.sliding_window_inference(small, (6, 6), 1, lambda z: 2 * z, overlap=0.25, mode="gaussian")
    close(y, 2 * small, 1e-12)
    # a non-trivial predictor: each output voxel is the weighted mean of the window predictions
    conv = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    y = T.sliding_window_inference(x, (6, 6), 2, conv, overlap=0.5, mode="constant")
    assert y.shape == x.shape
    with torch.no_grad():
        full = conv(x)
    assert float((y - full).abs().max()) > 0  # window borders differ from a whole-image conv
    close(y[:, :, 1:3, 1:3], full[:, :, 1:3, 1:3], 1e-12)  # interior of the first window only


# ------------------------------------------------------------------------------------------ runner

def _raw(d, name, arr):
    path = os.path.join(d, name + ".f64")
    np.ascontiguousarray(arr, dtype="<f8").tofile(path)
    return {"raw": path, "shape": list(np.shape(arr))}


def _run(d, req):
    rp = os.path.join(d, "req.json")
    req["output_dir"] = os.path.join(d, "out")
    with open(rp, "w") as f:
        json.dump(req, f)
    r = subprocess.run([sys.executable, os.path.join(HERE, "run_nn.py"), rp], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def _read(spec):
    return np.fromfile(spec["raw"], dtype="<f8").reshape(spec["shape"])


def test_runner():
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        x = rng.normal(size=(1, 2, 4, 4))
        lab = rng.integers(0, 2, size=(1, 1, 4, 4)).astype(np.float64)
        r = _run(d, {"kind": "loss", "name": "DiceLoss", "args": {"softmax": True, "to_onehot_y": True},
                     "input": _raw(d, "x", x), "target": _raw(d, "t", lab)})
        xt = torch.tensor(x, requires_grad=True)
        v = T.DiceLoss(softmax=True, to_onehot_y=True)(xt, torch.tensor(lab))
        v.backward()
        close(_read(r["value"]), v.detach(), 1e-12)
        close(_read(r["grad_input"]), xt.grad, 1e-12)
        r = _run(d, {"kind": "loss", "name": "DeepSupervisionLoss",
                     "args": {"loss": {"name": "DiceCELoss", "args": {"softmax": True, "to_onehot_y": True}}},
                     "input": _raw(d, "xs", np.stack([x, x * 0.5], 1)), "unbind_dim": 1,
                     "target": _raw(d, "t", lab)})
        assert _read(r["grad_input"]).shape == (1, 2, 2, 4, 4)
        yp = np.zeros((1, 2, 6, 6))
        yp[0, 1, 1:4, 1:4] = 1
        yp[0, 0] = 1 - yp[0, 1]
        r = _run(d, {"kind": "metric", "name": "HausdorffDistanceMetric", "args": {"percentile": 95},
                     "y_pred": _raw(d, "yp", yp), "y": _raw(d, "y", yp), "spacing": [1.0, 2.0]})
        close(_read(r["raw_values"]), [[0.0]])
        r = _run(d, {"kind": "network", "name": "UNet", "seed": 0, "input": _raw(d, "img", rng.normal(size=(1, 1, 8, 8))),
                     "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16],
                              "strides": [2, 2], "num_res_units": 2, "norm": ["group", {"num_groups": 2}],
                              "act": ["prelu", {"init": 0.1}]}})
        assert r["state_dict"][0] == ["model.0.conv.unit0.conv.weight", [4, 1, 3, 3], "float32"]
        out1 = _read(r["output"])
        sd = torch.load(r["state_dict_path"])
        assert list(sd) == [k for k, _, _ in r["state_dict"]] and all(v.dtype == torch.float32 for v in sd.values())
        # reload through network_from_state with another seed: identical output
        r2 = _run(d, {"kind": "network_from_state", "name": "UNet", "seed": 5, "state_dict_path": r["state_dict_path"],
                      "input": _raw(d, "img", _read({"raw": os.path.join(d, "img.f64"), "shape": [1, 1, 8, 8]})),
                      "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16],
                               "strides": [2, 2], "num_res_units": 2, "norm": ["group", {"num_groups": 2}],
                               "act": ["prelu", {"init": 0.1}]}})
        close(_read(r2["output"]), out1, 0)
        # raw-directory state dict
        sdir = os.path.join(d, "sd")
        os.makedirs(sdir)
        man = []
        for i, (k, v) in enumerate(sd.items()):
            _raw(sdir, f"t{i}", v.double().numpy())
            man.append({"key": k, "shape": list(v.shape), "raw": f"t{i}.f64", "dtype": str(v.dtype)[6:]})
        with open(os.path.join(sdir, "manifest.json"), "w") as f:
            json.dump({"tensors": man}, f)
        r3 = _run(d, {"kind": "network_from_state", "name": "UNet", "state_dict_path": sdir,
                      "input": {"raw": os.path.join(d, "img.f64"), "shape": [1, 1, 8, 8]},
                      "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16],
                               "strides": [2, 2], "num_res_units": 2, "norm": ["group", {"num_groups": 2}],
                               "act": ["prelu", {"init": 0.1}]}})
        close(_read(r3["output"]), out1, 0)
        r = _run(d, {"kind": "optimizer", "name": "Adam", "args": {"lr": 0.1, "betas": [0.9, 0.99]},
                     "params": [_raw(d, "p0", np.array([1.0, 2.0]))],
                     "grads": [[_raw(d, "g0", np.array([0.5, -0.5]))], [_raw(d, "g1", np.array([0.1, 0.1]))]]})
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
        o = torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.99))
        for gv in ([0.5, -0.5], [0.1, 0.1]):
            p.grad = torch.tensor(gv, dtype=torch.float64)
            o.step()
        close(_read(r["params"][0]), p.detach(), 1e-15)
        r = _run(d, {"kind": "scheduler", "name": "CosineAnnealingLR", "args": {"T_max": 4}, "base_lr": 1.0,
                     "steps": 4})
        close(r["lrs"], [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)], 1e-12)
        img = rng.normal(size=(1, 1, 7, 6, 5))
        r = _run(d, {"kind": "sliding_window", "roi_size": [4, 4, 4], "sw_batch_size": 2, "overlap": 0.5,
                     "mode": "gaussian", "sigma_scale": 0.125, "padding_mode": "constant", "cval": 0,
                     "input": _raw(d, "img3", img), "predictor": "conv_seed0"})
        y = _read(r["output"])
        assert y.shape == (1, 2, 7, 6, 5) and np.all((y > 0) & (y < 1))
        w = _read(r["predictor_weights"]["weight"])
        assert w.shape == (2, 1, 3, 3, 3)


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for t in tests:
        t()
        print(f"ok  {t.__name__}")
    print(f"{len(tests)} tests passed")


if __name__ == "__main__":
    main()
