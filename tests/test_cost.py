"""Cost counting reproduces the paper (Tables 2, 4, 6, 7, 9) and TF-slim's exact totals."""

from __future__ import annotations

import pytest

from mnet.backbone import count_cost, mobilenet_v1


def cost(**kw):
    res = kw.pop("resolution", 224)
    return count_cost(mobilenet_v1(resolution=res, **kw), res)


@pytest.mark.parametrize(
    "alpha,mult_adds_m,params_m", [(1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)]
)
def test_table6_width_multiplier(alpha, mult_adds_m, params_m):
    c = cost(alpha=alpha)
    assert round(c.mult_adds / 1e6) == mult_adds_m
    assert round(c.params / 1e6, 1) == params_m


@pytest.mark.parametrize("resolution,mult_adds_m", [(224, 569), (192, 418), (160, 290), (128, 186)])
def test_table7_resolution_multiplier(resolution, mult_adds_m):
    c = cost(resolution=resolution)
    # the paper truncates 290.7 M to 290; the others round
    assert abs(c.mult_adds / 1e6 - mult_adds_m) < 1
    assert round(c.params / 1e6, 1) == 4.2


def test_table9_half_width_160():
    c = cost(alpha=0.5, resolution=160)
    assert round(c.mult_adds / 1e6) == 76 or int(c.mult_adds / 1e6) == 76
    assert round(c.params / 1e6, 2) == 1.32


def test_table4_full_convolution():
    c = cost(full_conv=True)
    assert c.mult_adds / 1e6 == pytest.approx(4866, rel=5e-4)  # 4867.3 M counted; the paper prints 4866
    assert round(c.params / 1e6, 1) == 29.3


def test_table2_breakdown():
    shares = cost().by_kind()
    expected = {  # (Mult-Adds %, params %); the paper prints 1.19 % for the first conv, a transposition
        "pointwise": (94.86, 74.59),
        "depthwise": (3.06, 1.06),
        "conv": (1.91, 0.02),
        "fc": (0.18, 24.33),
    }
    for kind, (ma, pa) in expected.items():
        assert shares[kind][0] == pytest.approx(ma, abs=0.01)
        assert shares[kind][1] == pytest.approx(pa, abs=0.01)
    assert sum(m for m, _ in shares.values()) == pytest.approx(100)


@pytest.mark.parametrize(
    "alpha,resolution,params,mult_adds", [(1.0, 224, 3_185_088, 567_716_352), (0.75, 128, 1_800_144, 106_002_432)]
)
def test_tf_slim_exact_base_network(alpha, resolution, params, mult_adds):
    c = cost(alpha=alpha, resolution=resolution, num_classes=0)
    assert (c.params, c.mult_adds) == (params, mult_adds)


def test_per_layer_breakdown_names_every_conv():
    c = cost(alpha=0.5)
    assert len(c.layers) == 1 + 13 * 2 + 1
    assert c.layers[0].name == "layers.0.conv" and c.layers[-1].name == "head.fc"
    assert c.layers[1].kind == "depthwise" and c.layers[2].kind == "pointwise"
    assert c.layers[-2].output_shape == (1, 512, 7, 7)
