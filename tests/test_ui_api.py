"""The lab driven through gradio_client: /resolve, /generate and /sweep, data in and data out."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lab import params
from helpers import free_port, lab_client

SECRET = "sk-lab-test-secret-do-not-leak-0123456789"



def lab_settings(data_dir: Path, **extra: str):
    from lab.settings import load_settings

    environ = {
        "LAB_DATA_DIR": str(data_dir),
        "LAB_SIM_TIME_SCALE": "0.02",
        "LAB_SPEND_CAP_SESSION_USD": "none",
        "LAB_SPEND_CAP_DAY_USD": "none",
        "LAB_SPEND_CAP_PERSON_USD": "none",
        "LAB_SUBMITS_PER_MINUTE_PERSON": "none",
        "LAB_MAX_SWEEP": "4",
        "LAB_PRESCREEN": "off",
        **extra,
    }
    return load_settings(environ=environ)


@pytest.fixture(scope="module")
def lab(simulator, tmp_path_factory):
    """The lab on a free port, talking to the test simulator with a key that must never leak."""
    from lab.wiring import open_app
    from lab.ui import build_demo

    data_dir = tmp_path_factory.mktemp("lab-data")
    services = open_app(lab_settings(data_dir), base_url=simulator.base_url, api_key=SECRET)
    demo = build_demo(services)
    # No run_history argument on purpose: the lab's Blocks turns it off by default.
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url, services, data_dir
    demo.close()
    services.close()


@pytest.fixture(scope="module")
def client(lab, tmp_path_factory):
    url, _, _ = lab
    c = lab_client(url, tmp_path_factory.mktemp("downloads"))
    yield c
    c.close()


def body(**overrides) -> str:
    request = {"model": params.FAST_MODEL, "prompt": "a red fox trotting through fresh snow", "duration": "4",
               "metadata": {"seed": 7}}
    request.update(overrides)
    return json.dumps(request)


def contains_key(value, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(contains_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(contains_key(v, key) for v in value)
    return False


def test_only_resolve_generate_sweep_and_compare_are_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/resolve", "/generate", "/sweep", "/compare"}
    assert not api["unnamed_endpoints"]


def test_resolve_shows_which_field_won(client):
    result = client.predict(body(size="720x1280", metadata={"aspectRatio": "16:9"}), api_name="/resolve")
    assert result["ok"] is True
    assert result["effective"]["aspect_ratio"] == "16:9"
    assert result["source"]["aspect_ratio"] == "metadata.aspectRatio"
    assert result["source"]["resolution"] == "size"
    assert any("overridden by metadata.aspectRatio" in w for w in result["warnings"])


def test_resolve_of_an_invalid_body_lists_its_errors(client):
    result = client.predict(body(duration=8), api_name="/resolve")
    assert result["ok"] is False and result["wire"] is None
    assert [e["code"] for e in result["errors"]] == ["parse_request_failed"]


def test_generate_returns_the_video_and_a_summary(client):
    video, summary = client.predict(body(), api_name="/generate")
    assert Path(video).is_file() and Path(video).stat().st_size > 0
    assert summary["ok"] is True and summary["status"] == "saved"
    assert summary["task_id"].startswith("task_")
    assert summary["cost_usd"] == pytest.approx(0.30)
    assert summary["seed"] == 7
    assert summary["request"]["duration"] == "4"
    assert summary["answer"]["status"] == "completed"
    assert summary["thumbnail_count"] == 5
    assert not contains_key(summary, "path")


def test_generate_refuses_an_invalid_request_before_sending_it(client, lab):
    from gradio_client.exceptions import AppError

    _, services, _ = lab
    before = len(services.runs.store.list_runs(limit=1000))
    with pytest.raises(AppError, match='needs a duration of "8"'):
        client.predict(body(metadata={"resolution": "1080p"}), api_name="/generate")
    with pytest.raises(AppError, match="not valid JSON"):
        client.predict("{not json", api_name="/generate")
    assert len(services.runs.store.list_runs(limit=1000)) == before


def test_sweep_of_three_seeds_gives_three_results_and_a_contact_sheet(client):
    sheet, archive, summary = client.predict(body(), "1, 2, 3", 0, "", api_name="/sweep")
    assert [r["seed"] for r in summary["results"]] == [1, 2, 3]
    assert all(r["status"] == "saved" for r in summary["results"])
    assert summary["cost_usd"] == pytest.approx(0.90)
    assert Path(sheet).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        manifest = json.loads(z.read("manifest.json"))
        everything = b"".join(z.read(n) for n in names if not n.endswith(".mp4"))
    assert sum(n.endswith(".mp4") for n in names) == 3 and "contact_sheet.png" in names
    assert [t["wire"]["metadata"]["seed"] for t in manifest["tasks"]] == [1, 2, 3]
    assert all(t["task_id"] for t in manifest["tasks"])
    assert SECRET.encode() not in everything


def test_sweep_larger_than_allowed_is_refused(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="more than this lab allows"):
        client.predict(body(), "1, 2, 3", 2, "", api_name="/sweep")


def test_prompt_variants_times_seeds(client):
    _, _, summary = client.predict(body(), "11, 12", 0, "a fox\na hare", api_name="/sweep")
    assert [r["label"] for r in summary["results"]] == [
        "“a fox” · seed 11", "“a fox” · seed 12", "“a hare” · seed 11", "“a hare” · seed 12"]


def test_the_key_never_reaches_the_page(lab):
    import requests

    url, _, _ = lab
    config = requests.get(url.rstrip("/") + "/config", timeout=10)
    assert config.ok
    assert SECRET not in config.text
    assert config.json()["run_history"] is False


def test_no_event_makes_a_layout_block_or_a_hidden_progress_a_progress_target(lab):
    # Gradio 6's page re-reads every progress target (a layout block with all it holds) on each status message
    # of every later event: with the tab strip among them, a keystroke cost the browser ~0.7 s of CPU
    # (bench/bench_typing.py). Events that show no progress register none (lab.ui.events.QUIET).
    import requests

    url, _, _ = lab
    config = requests.get(url.rstrip("/") + "/config", timeout=10).json()
    kinds = {c["id"]: c["type"] for c in config["components"]}
    layout = {"tabs", "tabitem", "column", "row", "group", "accordion", "form"}
    for dep in config["dependencies"]:
        if not dep.get("backend_fn"):
            continue
        targets = dep["outputs"] if dep.get("show_progress_on") is None else dep["show_progress_on"]
        assert not [kinds[i] for i in targets if kinds.get(i) in layout], dep.get("api_name")
        if dep.get("show_progress") == "hidden":
            assert dep.get("show_progress_on") == [], dep.get("api_name")


def test_app_py_serves_the_lab_and_keeps_its_simulator_private(tmp_path, isolated_env):
    """`python app.py` with no key: the lab at /, its simulator unreachable through it, env honoured."""
    import os
    import subprocess
    import sys
    import time

    import requests

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "LAB_SIM_TIME_SCALE": "0.02", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    repo = Path(__file__).resolve().parent.parent
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180  # under a loaded machine (load 40 on 2 cores) it took 59 s
        while True:
            assert process.poll() is None, (tmp_path / "app.log").read_text()
            try:
                if requests.get(url + "config", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "app.py did not start"
            time.sleep(0.3)
        assert requests.get(url + "config", timeout=5).json()["run_history"] is False
        # No simulator route answers on the visitor-facing server: not the ledger, content or a submit.
        auth = {"Authorization": "Bearer sk-lab-simulator"}
        for prefix in ("sim/", ""):
            assert requests.get(url + prefix + "_sim/ledger", timeout=5).status_code == 404
            assert requests.get(url + prefix + "v1/videos/task_x/content", headers=auth, timeout=5).status_code == 404
            posted = requests.post(url + prefix + "v1/videos", headers=auth, timeout=5,
                                   json={"model": params.FAST_MODEL, "prompt": "a fox", "duration": "4"})
            assert posted.status_code in (404, 405) and "task_" not in posted.text
        client = lab_client(url, tmp_path / "downloads")
        video, summary = client.predict(body(), api_name="/generate")
        client.close()
        assert Path(video).is_file() and summary["backend"] == "simulator"
        assert (isolated_env / "journal.sqlite3").is_file()  # LAB_DATA_DIR honoured
        assert list(isolated_env.rglob(f"{summary['task_id']}.mp4"))
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_spend_cap_refuses_before_anything_is_sent(simulator, tmp_path):
    from gradio_client.exceptions import AppError

    from lab.wiring import open_app
    from lab.ui import build_demo

    services = open_app(lab_settings(tmp_path, LAB_SPEND_CAP_SESSION_USD="1.00"),
                        base_url=simulator.base_url)
    demo = build_demo(services)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = lab_client(url, tmp_path / "downloads")
        standard = body(model=params.STANDARD_MODEL)  # $1.20 > the $1.00 cap
        with pytest.raises(AppError, match=r"Session cap reached.*\$1\.00 cap\..*Nothing was sent"):
            client.predict(standard, api_name="/generate")
        with pytest.raises(AppError, match="Nothing was sent"):
            client.predict(body(), "1, 2, 3, 4", 0, "", api_name="/sweep")  # 4 × $0.30
        client.close()
        assert services.runs.store.list_runs() == []
    finally:
        demo.close()
        services.close()


def test_a_failed_task_is_data_with_a_plain_reason(make_simulator, tmp_path):
    from lab.wiring import open_app
    from lab.ui import build_demo

    failing = make_simulator(faults={"failed": 1.0})
    services = open_app(lab_settings(tmp_path), base_url=failing.base_url)
    demo = build_demo(services)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = lab_client(url, tmp_path / "downloads")
        video, summary = client.predict(body(), api_name="/generate")
        client.close()
        assert video is None
        assert summary["ok"] is False and summary["status"] == "failed"
        assert "not billed" in summary["message"] and summary["cost_usd"] == 0
        assert services.runs.store.get(summary["task_id"]).status == "failed"  # journalled
    finally:
        demo.close()
        services.close()
