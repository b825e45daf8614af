"""One place builds a Runner: the app's, a visitor key's and the CLI's share the settings' limits and lease."""

from __future__ import annotations

from lab import params
from lab.settings import load_settings
from lab.wiring import wire


def test_every_runner_the_app_builds_takes_the_lease_and_download_cap_from_settings(simulator, tmp_path):
    settings = load_settings({"LAB_DATA_DIR": str(tmp_path), "LAB_LEASE_S": "7", "LAB_ALLOW_VISITOR_KEY": "true"})
    wiring = wire(settings, base_url=simulator.base_url, api_key="sk-test-wiring")
    try:
        assert wiring.runner.lease_s == 7
        with wiring.runner_with_key("sk-visitor-key-123") as (runner, _client):
            assert runner.lease_s == 7
            assert runner.backend == "visitor"
            assert runner.download_max_bytes == settings.download_max_bytes
    finally:
        wiring.close()


def test_the_cli_and_the_app_embed_the_same_simulator_with_the_data_directorys_render_cache(tmp_path):
    from lab.wiring import open_app, open_cli

    settings = load_settings({"LAB_DATA_DIR": str(tmp_path), "LAB_SIM_TIME_SCALE": "0.02"})
    cli, app = open_cli(settings, thumbs=2), open_app(settings)
    try:
        for wiring in (cli, app.runs.wiring):
            assert wiring.backend == "simulator"
            assert wiring.simulator.config.render_cache == tmp_path / "renders"
        assert cli.runner.thumbs == 2 and cli.slots is None  # --concurrency is the CLI user's own limit
        assert app.runs.wiring.slots is not None
    finally:
        cli.close()
        app.close()


def test_a_command_line_key_makes_auto_live_as_the_environments_key_does():
    from_flag = load_settings({"LAB_DATA_DIR": "/tmp/x"}, flags={"api_key": "sk-from-the-flag", "backend": None})
    from_env = load_settings({"LAB_DATA_DIR": "/tmp/x", "APIYI_API_KEY": "sk-from-the-env"})
    assert from_flag.backend == from_env.backend == "live"
    assert from_flag.base_url == from_env.base_url == params.DEFAULT_BASE_URL


def test_a_command_line_base_url_points_the_simulator_backend_elsewhere_and_errors_name_the_flag():
    import pytest

    from lab.errors import SettingsError

    settings = load_settings({"LAB_DATA_DIR": "/tmp/x"}, flags={"base_url": "http://127.0.0.1:9/v1"})
    assert (settings.backend, settings.base_url) == ("simulator", "http://127.0.0.1:9/v1")
    with pytest.raises(SettingsError, match="--base-url"):
        load_settings({"LAB_DATA_DIR": "/tmp/x"}, flags={"base_url": "ftp://nowhere"})


def test_the_background_pre_screen_is_on_by_default_and_the_prescreen_setting_turns_it_off(simulator, tmp_path):
    on = wire(load_settings({"LAB_DATA_DIR": str(tmp_path / "on")}), base_url=simulator.base_url, api_key="sk-t")
    off = wire(load_settings({"LAB_DATA_DIR": str(tmp_path / "off"), "LAB_PRESCREEN": "off"}),
               base_url=simulator.base_url, api_key="sk-t")
    try:
        assert on.screener is not None and on.runner.screener is on.screener
        assert off.screener is None and off.runner.screener is None  # a saved take is handed to no one
    finally:
        on.close()
        off.close()
