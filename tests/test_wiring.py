"""One place builds a Runner: the app's, a visitor key's and the CLI's share the settings' limits and lease."""

from __future__ import annotations

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
