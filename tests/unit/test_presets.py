import numpy as np
import pytest

from dip.core.errors import ConfigError, DIPError
from dip.core.presets import DEFAULT_PRESET, get_preset
from dip.core.registry import get_task
from dip.core.tasks import (
    prepare_image,
    prepare_low_resolution,
    prepared_shape,
    smallest_max_side,
    working_long_side,
)


@pytest.mark.parametrize(
    "task,iters,z,down,skip",
    [
        ("impedance", 2400, 3, (8, 16, 32, 64, 128), (0, 0, 0, 4, 4)),
        ("denoise", 1800, 32, (128,) * 5, (4,) * 5),
        ("sr", 2000, 32, (128,) * 5, (4,) * 5),
    ],
)
def test_lab_presets_are_the_defaults_with_the_lab_hyper_parameters(task, iters, z, down, skip):
    p = get_preset("lab", task)
    assert p.name == DEFAULT_PRESET[task] == get_task(task).presets()[0].name
    assert p.fit.iterations == iters and p.input.channels == z
    assert p.net.down == down and p.net.up == down and p.net.skip == skip
    assert p.net.k_down == (3,) * 5 and p.net.k_up == (3,) * 5 and p.net.kernel_skip == 1
    assert p.net.up_mode == ("bilinear",) * 5
    assert p.fit.lr == 0.01 and p.fit.reg_noise_std == pytest.approx(1 / 30)
    assert p.input.kind == "noise" and p.input.scale == 0.1


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown preset 'f17'; valid presets: .*lab-denoise.*f16"):
        get_preset("f17")


def test_preset_of_another_task_is_refused():
    with pytest.raises(ConfigError, match="preset 'zebra-x4' is for the sr task; for denoise use one of"):
        get_preset("zebra-x4", "denoise")


def test_official_notebook_presets():
    assert get_preset("f16").fit.iterations == 3000 and get_preset("f16").fit.exp_weight == 0.99
    assert get_preset("zebra-x8").factor == 8 and get_preset("zebra-x8").fit.iterations == 4000
    barbara = get_preset("barbara")
    assert (barbara.fit.iterations, barbara.fit.lr, barbara.keep_fraction, barbara.grey) == (11000, 0.001, 0.5, True)


def test_overrides_leave_the_table_untouched():
    p = get_preset("lab-denoise").with_overrides(fit={"iterations": 5}, sigma_255=50)
    assert p.fit.iterations == 5 and p.sigma_255 == 50
    assert get_preset("lab-denoise").fit.iterations == 1800


@pytest.mark.parametrize("name", ["lab-denoise", "kate", "barbara", "lab-sr"])
@pytest.mark.parametrize("height,width", [(427, 640), (160, 320), (100, 75), (512, 512), (97, 1000), (300, 451)])
@pytest.mark.parametrize("max_side", [None, 64, 96, 256])
def test_prepared_shape_is_the_shape_prepare_image_makes(name, height, width, max_side):
    preset = get_preset(name)
    expected = prepared_shape(height, width, preset, max_side=max_side)
    x = np.zeros((height, width, 3), np.float32)
    try:
        shape = prepare_image(x, preset, max_side=max_side).shape[:2]
    except DIPError:  # too small for the network: the predicted shape says so too
        assert min(expected) < preset.net.min_side
    else:
        assert shape == expected


def test_a_photo_is_scaled_a_little_smaller_where_the_crop_would_cut_a_quarter_of_it():
    preset = get_preset("lab-denoise")  # crops to multiples of 32
    photo = np.zeros((300, 451, 3), np.float32)  # 3:2
    # at 128 px: 128x85, cropped to 128x64, would lose 25 % of the rows; 96x64 keeps the whole picture
    assert working_long_side(300, 451, preset, 128) == 96
    assert prepare_image(photo, preset, max_side=128).shape == (64, 96, 3)
    # at 256 px: 256x170 cropped to 256x160 loses 6 %; the whole picture (192x128) would cost 40 % of the pixels
    assert working_long_side(300, 451, preset, 256) == 256
    assert prepare_image(photo, preset, max_side=256).shape == (160, 256, 3)
    assert working_long_side(1080, 1920, preset, 256) == 227  # 16:9: 224x128 instead of 256x128 (89 % kept)
    assert working_long_side(960, 1280, preset, 128) == 128  # 4:3 at 128 px is 128x96: nothing to crop
    assert working_long_side(300, 451, preset, None) is None and working_long_side(300, 451, preset, 500) == 500
    assert working_long_side(300, 451, preset.with_overrides(pad_multiple=32), 128) == 128  # padding cuts nothing


def test_a_max_side_too_small_for_the_image_names_the_smallest_that_works():
    preset = get_preset("lab-denoise")
    wide = np.zeros((400, 600, 3), np.float32)
    with pytest.raises(
        DIPError,
        match=r"image is 600x400 px; downscaled to a longer side of 64 px it becomes 64x32 "
        r"px, below the 64x64 px this network needs\. Use a longer side \(max_side\) "
        r"of at least 96 px\.",
    ):
        prepare_image(wide, preset, max_side=64)
    assert prepare_image(wide, preset, max_side=96).shape == (64, 96, 3)
    assert smallest_max_side(400, 600, preset) == 96
    assert smallest_max_side(20, 30, preset) is None  # not even its full size: the plain message stays
    with pytest.raises(DIPError, match=r"this network needs at least 64x64 px\. Use a larger image\.$"):
        prepare_image(np.zeros((20, 30, 3), np.float32), preset, max_side=16)


@pytest.mark.parametrize("factor,multiple", [(4, 8), (8, 4)])
def test_a_low_resolution_input_is_cropped_only_as_far_as_its_output_needs(factor, multiple):
    preset = get_preset("lab-sr").with_overrides(factor=factor)
    lr = prepare_low_resolution(np.zeros((54, 80, 3), np.float32), preset)
    assert lr.shape == (54 - 54 % multiple, 80, 3)  # not 32x64: the x4 output of 48x80 is 192x320, a multiple of 32
    assert (lr.shape[0] * factor) % 32 == 0 and (lr.shape[1] * factor) % 32 == 0
    tiny = 32 // factor  # its output, 32x32 px, is below the 33 px the 5-level network takes: 64 after a crop to 32
    with pytest.raises(
        DIPError,
        match=rf"its x{factor} output would be 32x32 px, below the 64x64 px this network "
        r"needs",
    ):
        prepare_low_resolution(np.zeros((tiny, tiny, 3), np.float32), preset)


def test_one_minimum_image_side_is_named_everywhere():
    """The 5-level nets take 33 px, and a crop to a multiple of 32 must leave 64: messages say 64, not 32 or 33."""
    assert get_preset("lab-denoise").min_image_side == 64 and get_preset("lab-impedance").min_image_side == 64
    assert get_preset("barbara").min_image_side == get_preset("barbara").net.min_side  # no crop: its own minimum
    with pytest.raises(DIPError, match=r"image is 60x60 px; this network needs at least 64x64 px\. Use a larger "):
        prepare_image(np.zeros((60, 60, 3), np.float32), get_preset("lab-denoise"))
    assert prepare_image(np.zeros((64, 70, 3), np.float32), get_preset("lab-denoise")).shape == (64, 64, 3)


def test_every_preset_survives_its_json_record():
    """A queued job is written to disk as plain data and read back after a restart (preset_from_dict)."""
    import json

    from dip.core.presets import PRESETS, preset_from_dict
    from dip.core.runio import preset_as_dict

    for preset in PRESETS.values():
        assert preset_from_dict(json.loads(json.dumps(preset_as_dict(preset)))) == preset


def test_overriding_one_setting_of_a_later_task_keeps_its_others():
    """``params`` is merged as ``fit`` is: the JPEG page and ``--quality`` change the quality and nothing else."""
    p = get_preset("snail").with_overrides(params={"extra": 1})
    q = p.with_overrides(params={"quality": 30})
    assert q.params == {"quality": 30, "extra": 1} and p.params["quality"] == 10
