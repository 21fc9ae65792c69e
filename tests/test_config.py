import pytest
import yaml

from mldanet.config import (
    Config,
    apply_overrides,
    config_from_dict,
    load_config_file,
    load_preset,
    preset_names,
    save_config,
)


def test_every_design_table_row_has_a_preset():
    expected = {
        "ms_r18_640x192": ("resnet18", 640, 192, "fixed", 1e-4, 2),
        "ms_r18_640x192_adaptive": ("resnet18", 640, 192, "uncertainty", 1e-4, 2),
        "ms_r18_1024x320": ("resnet18", 1024, 320, "fixed", 5e-5, 4),
        "ms_r18_1024x320_adaptive": ("resnet18", 1024, 320, "uncertainty", 5e-5, 4),
        "ms_r50_1024x320": ("resnet50", 1024, 320, "fixed", 5e-5, 4),
        "ms_r50_1024x320_adaptive": ("resnet50", 1024, 320, "uncertainty", 5e-5, 4),
    }
    assert set(preset_names()) == set(expected) | {"demo", "demo_tiny", "demo_gpu"}
    for name, (backbone, width, height, weighting, lr, step) in expected.items():
        c = load_preset(name)
        assert (c.model.backbone, c.data.width, c.data.height, c.loss.weighting) == (backbone, width, height, weighting)
        assert c.optim.lr == pytest.approx(lr) and c.optim.step_epochs == step
        assert (c.optim.batch_size, c.optim.epochs, c.train.mode) == (2, 10, "MS")
        assert c.loss.use_hints and c.loss.smoothness_weight == pytest.approx(1e-3)
        assert c.train.frame_ids == (0, -1, 1, "s")
        c.validate()


def test_the_demo_recipe_is_a_preset():
    demo, tiny = load_preset("demo"), load_preset("demo_tiny")
    assert (demo.data.width, demo.data.height, demo.optim.batch_size, demo.optim.max_steps) == (192, 64, 4, 200)
    assert (tiny.optim.batch_size, tiny.optim.max_steps, tiny.optim.warmup_steps) == (2, 24, 4)
    assert demo.model.weights_init == tiny.model.weights_init == "scratch" and demo.loss.weighting == "uncertainty"
    for config in (demo, tiny):
        config.validate()


def test_closed_choices_are_refused_by_name():
    with pytest.raises(ValueError, match="train.mode='MX' is not one of M, S, MS"):
        apply_overrides(Config(), ["train.mode=MX"])
    config = Config()
    config.model.decoder_norm = "batch"  # set directly, not through a file: validate() still catches it
    with pytest.raises(ValueError, match="model.decoder_norm='batch' is not one of group, none"):
        config.validate()


def test_moved_keys_still_load():
    config = apply_overrides(Config(), ["loss.min_depth=0.5"])
    assert config.model.min_depth == 0.5
    from mldanet.config import config_from_dict

    old = config_from_dict({"loss": {"min_depth": 0.2, "max_depth": 80.0, "ssim_alpha": 0.8}})
    assert (old.model.min_depth, old.model.max_depth, old.loss.ssim_alpha) == (0.2, 80.0, 0.8)


def test_overrides_are_typed_and_nested():
    c = apply_overrides(load_preset("ms_r18_640x192"), ["optim.lr=3e-5", "data.height=96", "model.scales=[0, 1]", "loss.use_hints=false"])
    assert c.optim.lr == pytest.approx(3e-5) and isinstance(c.optim.lr, float)
    assert c.data.height == 96 and c.model.scales == (0, 1) and c.loss.use_hints is False


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'"),
        ("data.height=abc", "config key data.height: cannot use 'abc'"),
        ("lr", "must look like section.key=value"),
        ("optim=3", "is a section"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), [override])


def test_validation_names_the_value():
    c = config_from_dict({"data": {"height": 100}})
    with pytest.raises(ValueError, match="data.height=100 must be a positive multiple of 32"):
        c.validate()
    with pytest.raises(ValueError, match="train.mode='X' is not one of M, S, MS"):
        config_from_dict({"train": {"mode": "X"}})  # refused as it is read
    c = config_from_dict({"model": {"init_depth": 150.0}})
    with pytest.raises(ValueError, match=r"model.init_depth=150.0 must be 0 \(off\) or between model.min_depth=0.1"):
        c.validate()


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ValueError, match="ms_r18_640x192"):
        load_preset("nope")


def test_config_round_trips_through_yaml(tmp_path):
    c = apply_overrides(load_preset("ms_r50_1024x320_adaptive"), ["train.seed=7"])
    save_config(c, tmp_path / "c.yaml")
    again = load_config_file(tmp_path / "c.yaml")
    assert again == c
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["model"]["scales"] == [0, 1, 2, 3]


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="bad.yaml must hold a mapping"):
        load_config_file(bad)
    bad.write_text("optim: {lr: [}\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        load_config_file(bad)
    bad.write_text("optim: {nope: 1}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config key 'optim.nope'"):
        load_config_file(bad)
    bad.write_bytes(b"\x00\xd7\xff binary")
    with pytest.raises(ValueError, match=r"bad.yaml is not a text file \(not UTF-8\)"):
        load_config_file(bad)
    with pytest.raises(IsADirectoryError, match=f"config file {tmp_path} is a folder, not a file"):
        load_config_file(tmp_path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.clip_grad_norm=-1", r"optim.clip_grad_norm=-1.0 must be 0 \(off\) or positive"),
        ("optim.clip_grad_norm=.nan", r"optim.clip_grad_norm=nan must be 0 \(off\) or positive"),
        ("train.collapse_threshold=-1e-3", r"train.collapse_threshold=-0.001 must be 0 \(off\) or positive"),
        ("train.collapse_patience=0", "train.collapse_patience=0 must be at least 1"),
        ("train.stop_on_collapse=maybe", "config key train.stop_on_collapse: cannot use 'maybe' as bool"),
    ],
)
def test_guard_keys_are_validated_by_name(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), [override]).validate()


def test_guards_are_on_by_default_in_every_preset():
    for name in preset_names():
        c = load_preset(name)
        assert c.optim.clip_grad_norm == 5.0 and c.train.collapse_threshold == 1e-3
        assert c.train.collapse_patience == 20 and c.train.stop_on_collapse is False


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=-1", r"optim.lr=-1.0 must be a positive learning rate \(set by --lr or --set optim.lr=...\)"),
        ("optim.lr=.nan", r"optim.lr=nan must be a positive learning rate"),
        ("optim.epochs=0", r"optim.epochs=0 must be at least 1 \(set by --epochs\)"),
        ("optim.max_steps=-5", r"optim.max_steps=-5 must be positive, or 0 to run all optim.epochs \(set by --max-steps\)"),
        ("optim.warmup_steps=-1", r"optim.warmup_steps=-1 must be 0 \(off\) or positive"),
        ("train.log_every=0", r"train.log_every=0 must be at least 1 \(set by --log-every\)"),
        ("train.checkpoint_every=-1", r"train.checkpoint_every=-1 must be 0 \(only at the end of each epoch\) or positive"),
        ("data.num_workers=-2", r"data.num_workers=-2 must be 0 or more \(set by --num-workers\)"),
        ("data.img_ext=jpg", r"data.img_ext='jpg' is not one of .jpg, .png"),
    ],
)
def test_learning_rate_counts_and_image_extension_are_validated_by_key_and_flag(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), [override]).validate()
    Config().validate()  # the defaults pass


def test_the_architecture_keys_are_declared_beside_their_fields():
    from mldanet.config import ModelConfig, architecture_keys

    assert architecture_keys() == (
        "backbone", "variant", "decoder_attention", "attention_affinity", "structure_attention", "multi_level",
        "decoder_norm", "scales",
    )
    # the others start the network or map its output; they do not change its layers
    assert set(ModelConfig.__dataclass_fields__) - set(architecture_keys()) == {"weights_init", "init_depth", "min_depth", "max_depth"}
