"""Settings: environment beats space.yaml beats defaults; bad values are named with their source."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.errors import SettingsError
from lab.params import DEFAULT_BASE_URL, FAST_MODEL
from lab.settings import DEFAULT_SPACE_YAML, SPACE_YAML_KEYS, load_settings

REPO = Path(__file__).resolve().parent.parent


def write_yaml(tmp_path: Path, **values) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_without_a_key_the_backend_is_the_embedded_simulator(tmp_path):
    settings = load_settings({}, write_yaml(tmp_path))
    assert settings.backend == "simulator"
    assert settings.base_url is None
    assert not settings.has_key


def test_a_key_switches_auto_to_the_live_service(tmp_path):
    settings = load_settings({"APIYI_API_KEY": "sk-live"}, write_yaml(tmp_path))
    assert settings.backend == "live"
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.key_for_requests() == "sk-live"


def test_the_key_never_appears_in_repr(tmp_path):
    settings = load_settings({"APIYI_API_KEY": "sk-secret-value-123"}, write_yaml(tmp_path))
    assert "sk-secret-value-123" not in repr(settings)
    assert "sk-secret-value-123" not in str(settings)


def test_environment_beats_space_yaml_beats_default(tmp_path):
    path = write_yaml(tmp_path, max_sweep=5, spend_cap_day_usd=12.5)
    settings = load_settings({"LAB_MAX_SWEEP": "3"}, path)
    assert settings.max_sweep == 3
    assert settings.spend_cap_day_usd == 12.5
    assert settings.max_concurrent_per_session == 4
    assert settings.sources["max_sweep"] == "environment variable LAB_MAX_SWEEP"
    assert settings.sources["spend_cap_day_usd"] == "space.yaml key 'spend_cap_day_usd'"


@pytest.mark.parametrize(
    "env, yaml_values, words",
    [
        ({"LAB_MAX_SWEEP": "lots"}, {}, ["'lots'", "max_sweep", "LAB_MAX_SWEEP"]),
        ({}, {"max_sweep": 0}, ["max_sweep", "space.yaml", "at least 1"]),
        ({"LAB_BACKEND": "cloud"}, {}, ["'cloud'", "backend", "simulator"]),
        ({}, {"models": ["veo-2"]}, ["veo-2", "models"]),
        ({"LAB_SPEND_CAP_DAY_USD": "-1"}, {}, ["spend_cap_day_usd", "negative"]),
        ({"LAB_ALLOW_VISITOR_KEY": "maybe"}, {}, ["allow_visitor_key", "true or false"]),
        ({"LAB_SIM_TIME_SCALE": "0"}, {}, ["sim_time_scale"]),
    ],
)
def test_a_bad_value_is_named_with_where_it_came_from(tmp_path, env, yaml_values, words):
    with pytest.raises(SettingsError) as caught:
        load_settings(env, write_yaml(tmp_path, **yaml_values))
    for word in words:
        assert word in str(caught.value)


def test_live_backend_without_a_key_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="APIYI_API_KEY"):
        load_settings({"LAB_BACKEND": "live"}, write_yaml(tmp_path))


def test_unknown_space_yaml_key_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="unknown setting spend_limit"):
        load_settings({}, write_yaml(tmp_path, spend_limit=3))


def test_the_key_cannot_be_set_in_space_yaml(tmp_path):
    with pytest.raises(SettingsError, match="api_key"):
        load_settings({}, write_yaml(tmp_path, api_key="sk-committed"))


def test_caps_accept_null_and_dollar_strings(tmp_path):
    settings = load_settings({"LAB_SPEND_CAP_SESSION_USD": "$2.50"}, write_yaml(tmp_path, spend_cap_day_usd=None))
    assert settings.spend_cap_session_usd == 2.5
    assert settings.spend_cap_day_usd is None


def test_data_dir_from_the_environment(tmp_path):
    settings = load_settings({"LAB_DATA_DIR": str(tmp_path / "runs")}, write_yaml(tmp_path))
    assert settings.data_dir == tmp_path / "runs"


def test_gradio_server_variables_are_honoured(tmp_path):
    settings = load_settings({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}, write_yaml(tmp_path))
    assert (settings.server_name, settings.server_port) == ("0.0.0.0", 7861)


# --- the shipped configuration agrees with itself --------------------------------------------


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def pinned(name: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_space_front_matter_matches_the_pinned_gradio_and_the_app():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == pinned("gradio")
    assert meta["app_file"] == "app.py" and (REPO / meta["app_file"]).exists()
    assert isinstance(meta["python_version"], str) and meta["python_version"].startswith("3.11")


def test_pillow_pin_satisfies_gradio():
    major = int(pinned("pillow").split(".")[0])
    assert major < 13  # gradio 6.31.0 declares pillow<13


def test_shipped_space_yaml_loads_and_names_only_known_settings():
    data = yaml.safe_load(DEFAULT_SPACE_YAML.read_text())
    assert set(data) <= SPACE_YAML_KEYS
    settings = load_settings({})
    assert set(settings.models) == set(data["models"])
    assert FAST_MODEL in settings.models
    assert settings.max_sweep == data["max_sweep"]


# --- caps are hard ceilings; history scope ------------------------------------------------------


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0.01", "lots"])
def test_a_cap_that_is_not_a_finite_non_negative_number_is_refused_at_start(tmp_path, raw):
    with pytest.raises(SettingsError) as caught:
        load_settings({"LAB_SPEND_CAP_DAY_USD": raw}, write_yaml(tmp_path))
    assert "spend_cap_day_usd" in str(caught.value) and repr(raw) in str(caught.value)


def test_a_nan_cap_in_space_yaml_is_refused_too(tmp_path):
    with pytest.raises(SettingsError, match="finite"):
        load_settings({}, write_yaml(tmp_path, spend_cap_session_usd=float("nan")))


def test_a_zero_cap_is_a_real_cap(tmp_path):
    assert load_settings({"LAB_SPEND_CAP_DAY_USD": "0"}, write_yaml(tmp_path)).spend_cap_day_usd == 0.0


def test_history_is_per_session_on_a_space_and_shared_locally(tmp_path):
    path = write_yaml(tmp_path)
    assert load_settings({}, path).history_scope == "all"
    assert load_settings({"SPACE_ID": "someone/prompt-lab"}, path).history_scope == "session"
    assert load_settings({"SPACE_ID": "someone/prompt-lab", "LAB_HISTORY_SCOPE": "all"}, path).history_scope == "all"
    assert load_settings({}, write_yaml(tmp_path, history_scope="session")).history_scope == "session"


def test_a_bad_history_scope_is_named(tmp_path):
    with pytest.raises(SettingsError, match="history_scope.*session, all"):
        load_settings({"LAB_HISTORY_SCOPE": "mine"}, write_yaml(tmp_path))


def test_hf_sign_in_follows_the_space_oauth_variables(tmp_path):
    path = write_yaml(tmp_path)
    assert not load_settings({}, path).hf_oauth
    assert load_settings({"OAUTH_CLIENT_ID": "abc"}, path).hf_oauth
