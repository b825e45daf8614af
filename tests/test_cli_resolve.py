"""`python -m lab resolve`: the JSON interface other parts rely on (design.md, Interfaces)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.params import FAST_MODEL


def run_resolve(arg: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", "resolve", arg],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_body_prints_the_resolution_and_exits_0():
    body = {"model": FAST_MODEL, "prompt": "a fox", "size": "720x1280", "metadata": {"seed": 7}}
    proc = run_resolve(json.dumps(body))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True
    assert out["effective"]["size"] == "720x1280"
    assert out["source"] == {"duration": "default", "resolution": "size", "aspect_ratio": "size"}
    assert out["wire"]["duration"] == "8"
    assert out["price_usd"] == 0.3


def test_invalid_body_prints_errors_and_exits_2():
    proc = run_resolve(json.dumps({"model": FAST_MODEL, "prompt": "a fox", "duration": 8}))
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["ok"] is False
    assert out["errors"][0]["code"] == "parse_request_failed"
    assert out["wire"] is None


def test_dash_reads_the_body_from_stdin():
    proc = run_resolve("-", stdin=json.dumps({"model": FAST_MODEL, "prompt": "a fox", "seconds": "4"}))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["source"]["duration"] == "seconds"


@pytest.mark.parametrize("text", ["not json", "{'model': 1}", ""])
def test_body_that_is_not_json_gets_a_one_line_error_a_json_line_and_exit_2(text):
    proc = run_resolve(text)
    assert proc.returncode == 2
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["ok"] is False and [e["code"] for e in out["errors"]] == ["invalid_json"]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "not valid JSON" in proc.stderr
