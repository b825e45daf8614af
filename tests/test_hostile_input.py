"""Hostile input costs nothing: no traceback, no 5xx, nothing sent, strict JSON out (issue 11 §2-§4).

Property tests (hypothesis) throw hostile JSON at ``resolve``, at ``python -m lab
resolve`` (in-process, through ``lab.__main__.main``) and at the simulator over HTTP;
then one regression test per case the fuzzing found.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import params
from lab.__main__ import main as lab_main

FAST = params.FAST_MODEL
KEY = "sk-hostile-test"
SUBMIT = "POST /v1/videos"
HUGE_INT = "9" * 4301  # one digit past Python's int-from-text limit
# Text markers swapped for raw JSON after encoding (json.dumps cannot write these itself).
RAW = {"__HUGE_INT__": HUGE_INT, "__HUGE_FLOAT__": "1e400", "__BIG_INT__": "1" + "0" * 320,
       "__DEEP__": "[" * 5000 + "]" * 5000, "__DEEP33__": '{"k": ' * 33 + "1" + "}" * 33}

# ---------------------------------------------------------------- strategies

hostile_chars = st.characters(codec=None, exclude_categories=()) | st.sampled_from(
    ["\ud800", "\udfff", "\udc80", "\x00", "²", "٣", "\u2028", "\ufeff", "\x1b", "\U0001f600"])
hostile_text = st.text(hostile_chars, max_size=12)
plain_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12)
numbers = (
    st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([10**309, -(10**400), 2**1024, 1e308, params.SEED_MAX + 1, -1, 0])
)
markers = st.sampled_from(sorted(RAW))
scalars = st.none() | st.booleans() | numbers | hostile_text | markers


@st.composite
def deep(draw) -> Any:
    """Lists or objects nested 20 to 60 levels deep (deeper ones come as the __DEEP__ marker text)."""
    value = draw(scalars)
    for level in range(draw(st.integers(20, 60))):
        value = [value] if level % 2 else {"k": value}
    return value


json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(hostile_text, inner, max_size=3), max_leaves=8) | deep()


def field(valid: st.SearchStrategy) -> st.SearchStrategy:
    return valid | json_values


bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": field(st.sampled_from([*params.MODELS, "veo-x"])),
        "prompt": field(plain_text),
        "duration": field(st.sampled_from([*params.DURATIONS, "5", "²"])),
        "seconds": field(st.sampled_from(params.DURATIONS)),
        "size": field(st.sampled_from(params.SIZES)),
        "metadata": st.fixed_dictionaries({}, optional={
            "resolution": field(st.sampled_from(params.RESOLUTIONS)),
            "aspectRatio": field(st.sampled_from(params.ASPECT_RATIOS)),
            "seed": field(st.integers(0, params.SEED_MAX)),
            "durationSeconds": field(st.sampled_from([4, 6, 8, "8", "²"])),
            "negativePrompt": field(plain_text),
            "personGeneration": field(st.sampled_from(params.PERSON_GENERATION)),
        }).flatmap(lambda known: st.dictionaries(hostile_text, json_values, max_size=2).map(lambda extra: {**extra, **known}))
        | json_values,
    },
).flatmap(lambda known: st.dictionaries(hostile_text, json_values, max_size=2).map(lambda extra: {**extra, **known}))


def to_text(value: Any, ascii_only: bool) -> str:
    """JSON text for ``value``, with the markers swapped for numbers json.dumps cannot write."""
    try:
        text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    except (ValueError, RecursionError):  # an int past 4,300 digits, or deeper than the encoder goes
        text = json.dumps(str(type(value)))
    for marker, raw in RAW.items():
        text = text.replace(f'"{marker}"', raw)
    return text


def mutate(text: str, data: st.DataObject) -> str:
    """Sometimes cut or splice the text, so the decoder sees broken JSON too."""
    how = data.draw(st.sampled_from(["as is", "as is", "cut", "splice"]))
    if how == "cut" and text:
        return text[: data.draw(st.integers(0, len(text) - 1))]
    if how == "splice":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.sampled_from(["NaN", "-Infinity", "\\ud800", ",", "{", "\x00", HUGE_INT])) + text[at:]
    return text


# ---------------------------------------------------------------- invariants


def poisoned(value: Any) -> bool:
    """Whether ``value`` holds anything that must never be sent (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return True
        elif isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, int) and not isinstance(item, bool):
            if abs(item) > params.NUMBER_MAX_ABS:
                return True
        elif isinstance(item, params.OversizedNumber):
            return True
        elif isinstance(item, (list, dict)):
            if depth >= params.MAX_DEPTH:
                return True
            children = list(item.values()) + list(item.keys()) if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def strict(resolution: params.Resolution) -> dict:
    """The invariants every resolution holds, whatever went in; returns its JSON object."""
    text = json.dumps(resolution.to_json(), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # no lone surrogate anywhere in the output
    out = json.loads(text)
    assert out["ok"] == (not out["errors"]) == (out["wire"] is not None)
    assert all(isinstance(e["field"], str) and e["field"] and e["code"] != "internal" for e in out["errors"])
    return out


EXAMPLES = {"resolve": 900, "text": 500, "cli": 200, "http": 150}  # 1,750 in all
# No example database: a CI run starts clean and writes nothing into the checkout.
fast = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=EXAMPLES["resolve"], **fast)
@given(bodies | json_values)
def test_resolve_never_raises_and_refuses_anything_that_cannot_be_sent(value):
    out = strict(params.resolve(value))
    if isinstance(value, dict) and poisoned(value):
        assert not out["ok"]


@settings(max_examples=EXAMPLES["text"], **fast)
@given(bodies | json_values, st.booleans(), st.booleans(), st.data())
def test_resolve_json_never_raises_for_any_text_or_bytes(value, ascii_only, as_bytes, data):
    text = mutate(to_text(value, ascii_only), data)
    raw: str | bytes = text.encode("utf-8", errors="surrogatepass") if as_bytes else text
    out = strict(params.resolve_json(raw))
    if out["ok"]:
        assert not poisoned(json.loads(text, parse_int=params.json_int, parse_float=params.json_float))


def run_cli(*argv: str) -> tuple[int, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = lab_main(list(argv))
        except SystemExit as exc:
            code = exc.code
    assert "Traceback" not in stderr.getvalue()
    return code, stdout.getvalue()


@settings(max_examples=EXAMPLES["cli"], **fast)
@given(bodies | json_values, st.booleans(), st.data())
def test_cli_resolve_always_ends_with_strict_json_and_exit_0_or_2(value, ascii_only, data):
    text = mutate(to_text(value, ascii_only), data)
    if text == "-":  # that one reads stdin
        text = "--"
    code, stdout = run_cli("resolve", text)
    last = stdout.rstrip("\n").split("\n")[-1]  # JSON may hold U+2028 or U+0085: lines end at \\n
    out = json.loads(last)
    assert code in (0, 2) and (code == 0) == out["ok"]
    last.encode("utf-8")


@pytest.fixture(scope="module")
def sim(render_cache):
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache)) as server:
        yield server


ENVELOPES = ({"code", "message", "data"}, {"error"})


@settings(max_examples=EXAMPLES["http"], **fast)
@given(bodies | json_values, st.booleans(), st.data(),
       st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"]))
def test_the_simulator_answers_any_body_with_4xx_and_an_envelope_never_5xx(sim, value, ascii_only, data, content_type):
    text = mutate(to_text(value, ascii_only), data)
    raw = text.encode("utf-8", errors=data.draw(st.sampled_from(["surrogatepass", "replace"])))
    if data.draw(st.booleans()):
        raw = raw[: len(raw) // 2] + data.draw(st.binary(max_size=8)) + raw[len(raw) // 2:]
    before = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["submits"]
    # "stuck": an accepted body makes a task that never renders, so the fuzz costs no ffmpeg.
    answer = requests.post(f"{sim.base_url}/videos", data=raw, timeout=10, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": content_type, "X-Sim-Fault": "stuck"})
    created = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["submits"] - before
    envelope = answer.json()
    if answer.status_code == 200:
        assert envelope["status"] == "queued" and created == 1
        return
    assert created == 0
    if answer.status_code == 503:  # the contract's one 5xx: no channel for an unknown model
        assert envelope["error"]["code"] == "model_not_found"
        return
    assert 400 <= answer.status_code < 500
    assert set(envelope) in ENVELOPES


# ---------------------------------------------------------------- regressions (issue 11)


def codes(resolution: params.Resolution) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in resolution.errors}


def body(**fields: Any) -> dict:
    return {"model": FAST, "prompt": "a heron", **fields}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"metadata": {"seed": 10**309}}, ("metadata.seed", "out_of_range")),
    ({"duration": 10**309}, ("duration", "out_of_range")),
    ({"metadata": {"durationSeconds": -(10**400)}}, ("metadata.durationSeconds", "out_of_range")),
    ({"metadata": {"durationSeconds": "²"}}, ("metadata.durationSeconds", "invalid_type")),
    ({"metadata": {"durationSeconds": "٨"}}, ("metadata.durationSeconds", "invalid_type")),
    ({"metadata": {"extra": float("nan")}}, ("metadata.extra", "not_finite")),
    ({"metadata": {"extra": [1, float("-inf")]}}, ("metadata.extra[1]", "not_finite")),
    ({"metadata": {"negativePrompt": "blur \ud800"}}, ("metadata.negativePrompt", "invalid_text")),
    ({"metadata": {"style": {"tone": "\udfff"}}}, ("metadata.style.tone", "invalid_text")),
    ({"unknownTop": "\ud83d"}, ("unknownTop", "invalid_text")),
    ({"prompt": "a heron\x00"}, ("prompt", "invalid_text")),
    ({"metadata": {"\ud800key": 1}}, ("metadata.\\ud800key", "invalid_text")),
])
def test_each_value_that_cannot_be_sent_is_an_error_naming_its_field(fields, expected):
    result = params.resolve(body(**fields))
    assert expected in codes(result) and result.wire is None
    strict(result)


def test_deep_nesting_is_an_error_not_a_recursion_error():
    value: Any = "x"
    for _ in range(100_000):
        value = [value]
    result = params.resolve(body(metadata={"deep": value}))
    assert not result.ok and result.errors[0].code == "too_deep" and result.errors[0].field.startswith("metadata.deep[0]")
    text_result = params.resolve_json('{"metadata": {"deep": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    assert codes(text_result) == {("body", "too_deep")}


@pytest.mark.parametrize("where", ['"metadata": {"seed": %s}', '"duration": %s', '"metadata": {"durationSeconds": %s}'])
def test_a_4301_digit_integer_is_out_of_range_not_a_value_error(where):
    text = '{"model": "%s", "prompt": "p", %s}' % (FAST, where % HUGE_INT)
    result = params.resolve_json(text)
    assert [e.code for e in result.errors] == ["out_of_range"] and "4,301-digit" in result.errors[0].message


def test_a_huge_python_int_is_out_of_range_too():
    result = params.resolve(body(metadata={"seed": 10**4301}))
    assert codes(result) == {("metadata.seed", "out_of_range")}


def test_a_body_past_the_size_limit_is_refused_before_it_is_parsed():
    result = params.resolve_json('{"prompt": "' + "x" * params.BODY_MAX_BYTES + '"}')
    assert codes(result) == {("body", "too_large")}
    many = params.resolve(body(metadata={"tags": list(range(params.MAX_VALUES + 1))}))
    assert ("body", "too_large") in codes(many)


def test_non_utf8_bytes_are_an_error():
    assert codes(params.resolve_json(b'{"prompt": "\xff"}')) == {("body", "invalid_text")}


def test_a_valid_body_still_resolves_and_its_wire_is_strict_json():
    result = params.resolve_json('{"model": "%s", "prompt": "a heron \\ud83d\\ude00", "metadata": {"seed": 7, "x": 1e300}}' % FAST)
    assert result.ok
    assert json.loads(json.dumps(result.wire, allow_nan=False))["prompt"] == "a heron \U0001f600"


# The CLI: one line of error, the JSON summary last, exit 2 (in-process, fast).


@pytest.mark.parametrize("argv", [
    ["generate", "--prompt", "x", "--base-url", "ftp://x/v1"],
    ["generate", "--prompt", "x", "--base-url", "http://[::1/v1"],
    ["generate", "--prompt", "x", "--base-url", "http://127.0.0.1:99999/v1"],
    ["sweep", "--prompt", "x", "--seeds", "1", "--base-url", "ftp://x/v1"],
    ["resume", "--base-url", "http://[::1/v1"],
    *[["generate", "--prompt", "x", "--sim-time-scale", v] for v in ("-1", "nan", "inf", "0", "1e400")],
    ["generate", "--prompt", "x", "--thumbs", "-1"],
    ["generate", "--prompt", "x", "--seed", HUGE_INT],
    ["sweep", "--prompt", "x", "--seeds", "1", "--concurrency", "0"],
    ["generate", "--body", '{"prompt": "x", "metadata": {"seed": %s}}' % HUGE_INT],
    ["generate", "--body", "[" * 50_000],
    ["generate", "--prompt", "x\ud800"],
    ["generate", "--prompt", "x", "--negative-prompt", "\x00"],
    ["generate", "--prompt", "x", "--api-key", "sk-abc\ndef", "--base-url", "http://127.0.0.1:9/v1"],
    ["simulator", "--port", "99999"],
    ["simulator", "--port", "-1"],
    ["simulator", "--time-scale", "nan"],
    ["simulator", "--time-scale", "inf"],
    ["resolve", "-Infinity"],
    ["sweep", "--prompt", "x", "--seeds", "1", "--prompts-file", "/nonexistent/prompts.txt"],
    ["sweep", "--prompt", "x", "--seeds", "1", "--prompts-file", "/dev/zero"],  # bounded read: refused, no hang
    ["bogus"],
    [],
])
def test_cli_refuses_bad_flags_with_a_json_line_and_exit_2(argv):
    code, stdout = run_cli(*argv)
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 2 and summary["ok"] is False


def test_a_key_with_a_newline_is_a_settings_error_and_nothing_is_sent(sim):
    before = sim.ledger()["requests"].get(SUBMIT, 0)
    code, stdout = run_cli("generate", "--prompt", "x", "--duration", "4", "--base-url", sim.base_url,
                           "--api-key", "sk-abc\r\nX-Injected: 1")
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 2 and "API key" in summary["error"] and "may have created" not in summary["error"]
    assert "X-Injected" not in stdout  # the key is never echoed
    assert sim.ledger()["requests"].get(SUBMIT, 0) == before


@pytest.mark.parametrize("fields", [
    {"metadata": {"negativePrompt": "\ud800"}},
    {"metadata": {"extra": "\udc00"}},
    {"unknownTop": "\ud800"},
    {"metadata": {"extra": float("nan")}},
])
def test_cli_generate_sends_nothing_for_a_body_that_cannot_be_sent(sim, fields):
    # These were submitted and billed, then lost when the journal could not write them.
    before = sim.ledger()["requests"].get(SUBMIT, 0)
    text = json.dumps({"duration": "4", **fields}, ensure_ascii=True, allow_nan=True)
    code, stdout = run_cli("generate", "--prompt", "x", "--body", text, "--base-url", sim.base_url)
    assert code == 2 and json.loads(stdout.strip().splitlines()[-1])["ok"] is False
    assert sim.ledger()["requests"].get(SUBMIT, 0) == before


# The simulator: 4xx with an envelope, and no task for a body it refuses.


def post(sim, raw: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(f"{sim.base_url}/videos", data=raw, timeout=30,
                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": content_type})


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b'{"model": "%s", "prompt": "p", "metadata": {"seed": %s}}' % (FAST.encode(), HUGE_INT.encode()), 400, "invalid_request"),
    (b'{"model": "%s", "prompt": "p", "metadata": {"x": 1e400}}' % FAST.encode(), 400, "invalid_request"),
    (b'{"model": "%s", "prompt": "p", "metadata": {"x": NaN}}' % FAST.encode(), 400, "parse_request_failed"),
    (b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "parse_request_failed"),
    (b'{"model": "%s", "prompt": "p", "metadata": {"x": ' % FAST.encode() + b"[" * 40 + b"]" * 40 + b"}}", 400, "invalid_request"),
    (b'{"model": "%s", "prompt": "p \\ud800"}' % FAST.encode(), 400, "invalid_request"),
    (b'{"model": "%s", "prompt": "p", "metadata": {"negativePrompt": "\\u0000"}}' % FAST.encode(), 400, "invalid_request"),
    (b'{"model": "\\ud800"}', 400, "invalid_request"),
    (b'{"prompt": "\xff\xfe"}', 503, None),  # invalid UTF-8 reads as U+FFFD (as in Go); then no model: no channel
    (b"\xff" * 10, 400, "parse_request_failed"),
    (b"x" * (params.BODY_MAX_BYTES + 1), 413, "invalid_request"),
    (b"x" * (8 * 1024 * 1024), 413, "invalid_request"),
])
def test_the_simulator_refuses_hostile_bodies_with_4xx_before_any_task(sim, raw, status, code):
    before = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["submits"]
    answer = post(sim, raw)
    assert answer.status_code == status
    if code is not None:
        assert answer.json()["code"] == code and answer.json()["data"] is None
    assert requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["submits"] == before


def test_a_surrogate_in_the_prompt_creates_no_task_left_in_progress(sim):
    before = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["tasks"]
    answer = post(sim, b'{"model": "%s", "prompt": "a heron \\udc00", "duration": "4"}' % FAST.encode())
    assert answer.status_code == 400 and "prompt" in answer.json()["message"]
    assert requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["tasks"] == before


def test_a_wrong_content_type_with_a_good_body_is_still_read(sim):
    # Go's handler reads the body whatever the header says; the fault keeps the task from rendering.
    answer = requests.post(f"{sim.base_url}/videos", timeout=30, data=json.dumps(body(duration="4")).encode(),
                           headers={"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain", "X-Sim-Fault": "stuck"})
    assert answer.status_code == 200 and answer.json()["status"] == "queued"


def test_the_summary_line_is_utf8_even_when_argv_held_bytes_that_are_not():
    # Python hands a non-UTF-8 argv byte (\xff) over as the lone surrogate \udcff.
    code, stdout = run_cli("generate", "--prompt", "x", "--duration", "4", "--data-dir", "/proc/\udcff/x",
                           "--base-url", "http://127.0.0.1:9/v1")
    last = stdout.rstrip("\n").split("\n")[-1]
    last.encode("utf-8")
    assert code != 0 and json.loads(last)["ok"] is False
