import pytest

from promptrack.pipeline.config import config_to_dict, load_config, preset_names
from promptrack.pipeline.errors import ConfigError, PromptError
from promptrack.pipeline.prompts import grounding_text, parse_prompt


@pytest.mark.parametrize("prompt", ["person . car", "person, car", "person.car.", " Person ;car ", "person . car . person"])
def test_prompt_forms_give_same_phrases(prompt):
    assert parse_prompt(prompt) == ["person", "car"]


def test_multi_word_phrases_and_lists():
    assert parse_prompt(["red  car", "person. dog"]) == ["red car", "person", "dog"]
    assert grounding_text(["red car", "dog"]) == "red car . dog ."


@pytest.mark.parametrize("prompt", ["", "  ", " . , ", []])
def test_empty_prompt_is_an_error(prompt):
    with pytest.raises(PromptError, match="empty prompt"):
        parse_prompt(prompt)


def test_presets_load_and_differ():
    assert {"default", "fast", "accurate"} <= set(preset_names())
    default, fast, accurate = (load_config(n) for n in ("default", "fast", "accurate"))
    assert default.tracker.image_size == 1024
    assert fast.tracker.image_size < default.tracker.image_size
    assert accurate.detect_every < default.detect_every


def test_overrides_and_keyword_values_apply_in_order():
    cfg = load_config("fast", ["tracker.image_size=256", "output.mot=true"], detect_every=3, tracker__sam2="small")
    assert (cfg.tracker.image_size, cfg.output.mot, cfg.detect_every, cfg.tracker.sam2) == (256, True, 3, "small")
    # None values (CLI options left unset) keep the preset's value
    assert load_config("fast", detect_every=None).detect_every == load_config("fast").detect_every


@pytest.mark.parametrize("override", ["tracker.imagesize=5", "nonsense=1", "noequals"])
def test_bad_override_is_one_line_error(override):
    with pytest.raises(ConfigError) as err:
        load_config("default", [override])
    assert "\n" not in str(err.value)


def test_bad_values_and_preset():
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_config("default", ["tracker.image_size=100"])
    with pytest.raises(ConfigError, match="unknown config preset"):
        load_config("nope")
    with pytest.raises(ConfigError):
        load_config("default", ["detect_every=abc"])


def test_yaml_path_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("detect_every: 7\ntracker:\n  image_size: 512\n")
    cfg = load_config(str(path))
    assert (cfg.detect_every, cfg.tracker.image_size) == (7, 512)
    assert config_to_dict(cfg)["tracker"]["image_size"] == 512
