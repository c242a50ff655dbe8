"""Invariants of the backbone, run over the α × ρ grid."""

from __future__ import annotations

import itertools

import pytest
import torch

from mnet.backbone import ALPHAS, RESOLUTIONS, MobileNetConfig, mobilenet_v1, scale_channels
from mnet.backbone.layers import tf_same_pad

GRID = list(itertools.product(ALPHAS, RESOLUTIONS))


@pytest.mark.parametrize("alpha,resolution", GRID)
def test_feature_info_matches_forward(alpha, resolution):
    model = mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=10).eval()
    x = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        maps = model.forward_intermediates(x, list(range(len(model.layers))))
        logits = model(x)
    assert logits.shape == (1, 10)
    for info, fmap in zip(model.feature_info, maps):
        assert fmap.shape[1] == info.num_chs
        # TF "SAME" gives ceil(size / stride) at every stride
        assert fmap.shape[-1] == -(-resolution // info.reduction)
    assert model.feature_info[-1].num_chs == model.num_features == scale_channels(1024, alpha)


def test_forward_head_and_features_compose():
    model = mobilenet_v1(alpha=0.25, resolution=128).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 256, 4, 4)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, 256)


def test_strides_map_to_tf_slim_layers():
    model = mobilenet_v1(alpha=0.5)
    assert model.feature_indices([2, 4, 8, 16, 32]) == [1, 3, 5, 11, 13]
    maps = model.forward_strides(torch.randn(1, 3, 300, 300), (16, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [(256, 19, 19), (512, 10, 10)]
    with pytest.raises(ValueError, match="stride 64"):
        model.feature_indices([64])
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(torch.randn(1, 3, 64, 64), [14])


def test_reset_classifier_and_no_classifier():
    model = mobilenet_v1(alpha=0.25, resolution=64)
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 256)
    assert not any("fc" in k for k in mobilenet_v1(num_classes=0).state_dict())


def test_state_dict_follows_tf_slim_numbering():
    keys = mobilenet_v1().state_dict().keys()
    assert "layers.0.conv.weight" in keys and "layers.13.pw.conv.weight" in keys
    assert mobilenet_v1().state_dict()["layers.1.dw.conv.weight"].shape == (32, 1, 3, 3)
    assert not any(k.endswith("conv.bias") for k in keys)


@pytest.mark.parametrize("size,stride,expected", [(224, 2, (0, 1)), (7, 2, (1, 1)), (112, 1, (1, 1)), (15, 2, (1, 1))])
def test_tf_same_padding(size, stride, expected):
    assert tf_same_pad(size, 3, stride) == expected


def test_padding_modes_differ_only_in_grid():
    torch.manual_seed(0)
    tf = mobilenet_v1(alpha=0.25, resolution=64, padding="tf_same").eval()
    sym = mobilenet_v1(alpha=0.25, resolution=64, padding="symmetric").eval()
    sym.load_state_dict(tf.state_dict())
    x = torch.randn(1, 3, 64, 64)
    # TF pads 0 before / 1 after at stride 2, so its windows sit one pixel further down-right:
    # TF-SAME on x equals symmetric padding on x shifted up-left by one pixel, away from the border.
    shifted = torch.nn.functional.pad(x[..., 1:, 1:], (0, 1, 0, 1))
    with torch.no_grad():
        (a,), (b,), (c,) = (m.forward_intermediates(t, [0]) for m, t in ((tf, x), (sym, x), (sym, shifted)))
    assert a.shape == b.shape == (1, 8, 32, 32)
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(a[..., 1:, 1:], c[..., 1:, 1:])


def test_activation_and_bn_knobs():
    model = mobilenet_v1(activation="relu", bn_eps=1e-5, bn_momentum=0.01, dropout=0.2)
    assert isinstance(model.layers[0].act, torch.nn.ReLU)
    assert model.layers[0].bn.eps == 1e-5 and model.layers[0].bn.momentum == 0.01
    assert model.head.drop.p == 0.2
    assert isinstance(mobilenet_v1().layers[0].act, torch.nn.ReLU6)


def test_alpha_rounding_is_tf_slims():
    assert scale_channels(32, 0.25) == 8
    assert scale_channels(64, 0.25) == 16
    assert scale_channels(32, 0.1) == 8  # min_depth
    assert scale_channels(1024, 1.3) == 1331
    assert mobilenet_v1(alpha=1.5, resolution=32).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


@pytest.mark.parametrize("alpha", [0, -0.5, 1.51, 2, float("nan"), "1"])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        mobilenet_v1(alpha=alpha)


@pytest.mark.parametrize("resolution", [31, 0, -224, 224.0])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match="resolution"):
        MobileNetConfig(resolution=resolution)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(activation="gelu"), "activation"),
        (dict(padding="same"), "padding"),
        (dict(num_classes=-1), "num_classes"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_knobs(kw, match):
    with pytest.raises(ValueError, match=match):
        mobilenet_v1(**kw)


@pytest.mark.parametrize(
    "shape,match",
    [
        ((1, 1, 64, 64), "3 input channels"),
        ((1, 4, 64, 64), "got 4"),
        ((3, 64, 64), "rank 4"),
        ((1, 1, 3, 64, 64), "rank 5"),
    ],
)
def test_bad_input_tensor(shape, match):
    model = mobilenet_v1(alpha=0.25)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*shape))
