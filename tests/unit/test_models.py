import pytest
import torch

from dip.core.errors import ConfigError
from dip.core.models import InputConfig, SkipNet, SkipNetConfig, count_parameters, make_input_code
from dip.core.presets import PRESETS, get_preset
from dip.core.registry import TASKS
from dip.core.tasks import build_net

# Parameter counts of the official models (REFERENCE.md §1.6).
OFFICIAL_COUNTS = {
    "lab denoise / SR": (SkipNetConfig(), 2_217_831),
    "barbara (1 output)": (SkipNetConfig(output_channels=1), 2_217_573),
    "noise impedance / snail": (
        SkipNetConfig(input_channels=3, channels_down=(8, 16, 32, 64, 128), channels_skip=(0, 0, 0, 4, 4)),
        572_827,
    ),
    "kate inpainting": (SkipNetConfig(channels_skip=128, upsample_mode="nearest"), 3_002_627),
    "vase inpainting": (SkipNetConfig(input_channels=2, channels_skip=0, upsample_mode="nearest"), 2_157_955),
    "library skip_depth6": (
        SkipNetConfig(
            input_channels=1,
            channels_down=(16, 32, 64, 128, 128, 128),
            channels_skip=0,
            kernel_down=5,
            upsample_mode="nearest",
            need_1x1_up=False,
        ),
        2_996_467,
    ),
    "restoration kate (avg pool)": (
        SkipNetConfig(channels_down=(16, 32, 64, 128, 128), channels_skip=0, downsample_mode="avg"),
        1_027_379,
    ),
    "flash-no-flash": (SkipNetConfig(input_channels=3), 2_184_307),
}


@pytest.mark.parametrize("name", OFFICIAL_COUNTS)
def test_parameter_count_matches_official(name):
    cfg, expected = OFFICIAL_COUNTS[name]
    assert count_parameters(SkipNet(cfg)) == expected


@pytest.mark.parametrize(
    "preset,expected",
    [
        ("lab-denoise", 2_217_831),
        ("lab-sr", 2_217_831),
        ("lab-impedance", 572_827),
        ("kate", 3_002_627),
        ("vase", 2_157_955),
        ("library", 2_996_467),
        ("barbara", 2_217_573),
    ],
)
def test_presets_build_the_official_nets(preset, expected):
    p = get_preset(preset)
    assert count_parameters(build_net(p, 1 if p.grey else 3)) == expected


@pytest.mark.parametrize("height,width", [(64, 96), (100, 75), (33, 47)])
def test_output_shape_equals_input_shape_for_any_size(height, width):
    net = SkipNet(SkipNetConfig())
    out = net(torch.rand(1, 32, height, width))
    assert out.shape == (1, 3, height, width)
    assert 0 < out.min() and out.max() < 1  # sigmoid output


@pytest.mark.parametrize(
    "cfg",
    [
        SkipNetConfig(channels_skip=0, upsample_mode="nearest"),
        SkipNetConfig(channels_down=(16, 32, 64, 128, 128), channels_skip=0, downsample_mode="avg"),
    ],
)
def test_odd_sizes_keep_their_shape_without_skips_and_with_pooling(cfg):
    side = cfg.min_side + 7
    assert SkipNet(cfg)(torch.rand(1, 32, side, side + 3)).shape[-2:] == (side, side + 3)


def test_min_side_is_the_real_limit():
    cfg = SkipNetConfig()
    net = SkipNet(cfg)
    net(torch.rand(1, 32, cfg.min_side, cfg.min_side))
    with pytest.raises((ValueError, RuntimeError)):
        net(torch.rand(1, 32, cfg.min_side - 1, cfg.min_side - 1))


def test_per_level_settings_must_match_the_number_of_levels():
    with pytest.raises(ConfigError, match="channels_skip has 2 entries but channels_down has 5 levels"):
        SkipNetConfig(channels_skip=(4, 4))


def test_unknown_mode_is_rejected_with_the_choices():
    with pytest.raises(ConfigError, match="upsample_mode='bicubic' is not supported; choose one of bilinear, nearest"):
        SkipNetConfig(upsample_mode="bicubic")


def test_zero_padding_and_uniform_bn_init_options():
    net = SkipNet(SkipNetConfig(channels_down=(8, 8), padding="zero", bn_gamma_init="uniform"))
    gammas = torch.cat([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert 0 <= gammas.min() and gammas.max() <= 1 and gammas.std() > 0.1  # U(0, 1) as in PyTorch 0.4
    assert not any(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules())
    assert net(torch.rand(1, 32, 20, 24)).shape == (1, 3, 20, 24)


def test_input_code_is_uniform_in_0_to_one_tenth_and_seeded():
    cfg = InputConfig(channels=32)
    z1 = make_input_code(cfg, 64, 48, generator=torch.Generator().manual_seed(3))
    z2 = make_input_code(cfg, 64, 48, generator=torch.Generator().manual_seed(3))
    assert z1.shape == (1, 32, 64, 48) and torch.equal(z1, z2)
    assert 0 <= z1.min() and z1.max() < 0.1 and abs(z1.mean().item() - 0.05) < 0.002


def test_meshgrid_input_spans_0_to_1():
    z = make_input_code(InputConfig(kind="meshgrid", channels=2), 5, 9)
    assert z[0, 0, 0].tolist() == pytest.approx([i / 8 for i in range(9)])
    assert z[0, 1, :, 0].tolist() == pytest.approx([i / 4 for i in range(5)])
    with pytest.raises(ConfigError, match="meshgrid input has 2 channels"):
        InputConfig(kind="meshgrid", channels=3)


def test_every_preset_is_consistent():
    for p in PRESETS.values():
        assert p.task in TASKS  # a registered task
        assert p.description and p.source
