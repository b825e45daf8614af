"""The request core: precedence, validation, wire body and price, as the vendor documents them."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import params
from lab.params import FAST_MODEL, STANDARD_MODEL, build_body, resolve

PROMPT = "A coastal lighthouse at dusk, slow push-in, waves lapping the rocks"


def body(**fields):
    base = {"model": FAST_MODEL, "prompt": PROMPT}
    metadata = fields.pop("metadata", None)
    base.update(fields)
    if metadata is not None:
        base["metadata"] = metadata
    return base


def codes(resolution):
    return {(issue.field, issue.code) for issue in resolution.errors}


# --- precedence -------------------------------------------------------------------------

DURATION_CASES = [
    # (top-level fields, metadata, effective duration, source)
    ({}, {}, "8", "default"),
    ({"seconds": "4"}, {}, "4", "seconds"),
    ({"duration": "6"}, {}, "6", "duration"),
    ({"duration": "6", "seconds": "4"}, {}, "6", "duration"),
    ({}, {"durationSeconds": 4}, "4", "metadata.durationSeconds"),
    ({"duration": "6"}, {"durationSeconds": 4}, "4", "metadata.durationSeconds"),
    ({"duration": "6", "seconds": "8"}, {"durationSeconds": 4}, "4", "metadata.durationSeconds"),
    ({"seconds": "6"}, {"durationSeconds": 8}, "8", "metadata.durationSeconds"),
]


@pytest.mark.parametrize("top, metadata, expected, source", DURATION_CASES)
def test_duration_precedence_is_durationSeconds_then_duration_then_seconds_then_8(top, metadata, expected, source):
    result = resolve(body(**top, metadata=metadata))
    assert result.ok, result.errors
    assert result.effective["duration"] == expected
    assert result.source["duration"] == source
    assert result.wire["duration"] == expected


RESOLUTION_CASES = [
    # (size, metadata.resolution, effective resolution, source)
    (None, None, "720p", "default"),
    ("1280x720", None, "720p", "size"),
    ("720x1280", None, "720p", "size"),
    ("1920x1080", None, "1080p", "size"),
    ("1080x1920", None, "1080p", "size"),
    ("3840x2160", None, "4k", "size"),
    ("2160x3840", None, "4k", "size"),
    ("1280x720", "1080p", "1080p", "metadata.resolution"),
    ("3840x2160", "720p", "720p", "metadata.resolution"),
    (None, "4k", "4k", "metadata.resolution"),
]


@pytest.mark.parametrize("size, meta_resolution, expected, source", RESOLUTION_CASES)
def test_metadata_resolution_beats_size_beats_720p(size, meta_resolution, expected, source):
    fields = {"size": size} if size else {}
    metadata = {"resolution": meta_resolution} if meta_resolution else {}
    result = resolve(body(**fields, metadata=metadata))
    assert result.ok, result.errors
    assert result.effective["resolution"] == expected
    assert result.source["resolution"] == source


ASPECT_CASES = [
    (None, None, "16:9", "default"),
    ("1280x720", None, "16:9", "size"),
    ("720x1280", None, "9:16", "size"),
    ("2160x3840", None, "9:16", "size"),
    ("720x1280", "16:9", "16:9", "metadata.aspectRatio"),
    ("1280x720", "9:16", "9:16", "metadata.aspectRatio"),
    (None, "9:16", "9:16", "metadata.aspectRatio"),
]


@pytest.mark.parametrize("size, meta_aspect, expected, source", ASPECT_CASES)
def test_explicit_aspect_beats_size_orientation_beats_16_9(size, meta_aspect, expected, source):
    fields = {"size": size} if size else {}
    metadata = {"aspectRatio": meta_aspect} if meta_aspect else {}
    result = resolve(body(**fields, metadata=metadata))
    assert result.ok, result.errors
    assert result.effective["aspect_ratio"] == expected
    assert result.source["aspect_ratio"] == source


@pytest.mark.parametrize(
    "resolution, aspect, size",
    [
        ("720p", "16:9", "1280x720"),
        ("720p", "9:16", "720x1280"),
        ("1080p", "16:9", "1920x1080"),
        ("1080p", "9:16", "1080x1920"),
        ("4k", "16:9", "3840x2160"),
        ("4k", "9:16", "2160x3840"),
    ],
)
def test_effective_size_is_resolution_times_aspect(resolution, aspect, size):
    result = resolve(body(metadata={"resolution": resolution, "aspectRatio": aspect}))
    assert result.effective["size"] == size
    assert result.wire["size"] == size


def test_size_orientation_survives_an_explicit_resolution():
    result = resolve(body(size="720x1280", metadata={"resolution": "1080p"}))
    assert result.effective["size"] == "1080x1920"
    assert result.source == {"duration": "default", "resolution": "metadata.resolution", "aspect_ratio": "size"}


def test_overridden_fields_are_recorded_and_warned():
    result = resolve(body(duration="6", seconds="4", size="720x1280", metadata={"durationSeconds": 8, "resolution": "1080p", "aspectRatio": "16:9"}))
    assert result.ok
    overridden = {(o.setting, o.field, o.winner) for o in result.overrides}
    assert ("duration", "duration", "metadata.durationSeconds") in overridden
    assert ("duration", "seconds", "metadata.durationSeconds") in overridden
    assert ("resolution", "size", "metadata.resolution") in overridden
    assert ("aspect_ratio", "size", "metadata.aspectRatio") in overridden
    text = " ".join(result.warnings)
    assert 'duration="6" is overridden by metadata.durationSeconds=8' in text
    assert "overridden by metadata.aspectRatio=16:9" in text


def test_same_value_in_a_lower_field_is_not_warned_as_a_conflict():
    result = resolve(body(duration="8", metadata={"durationSeconds": 8, "seed": 1}))
    assert result.ok
    assert result.warnings == ()
    assert result.overrides == ()


def test_a_size_that_agrees_with_resolution_and_aspect_is_no_override():
    # Presets send size 1280x720 with metadata.resolution 720p and aspectRatio 16:9: nothing is overridden.
    result = resolve(body(size="1280x720", metadata={"resolution": "720p", "aspectRatio": "16:9", "seed": 1}))
    assert result.ok and result.overrides == () and result.warnings == ()


def test_a_size_is_overridden_only_in_the_setting_where_it_differs():
    result = resolve(body(size="1280x720", metadata={"resolution": "1080p", "aspectRatio": "16:9", "seed": 1}))
    assert [(o.setting, o.field, o.value, o.winner) for o in result.overrides] == [
        ("resolution", "size", "1280x720", "metadata.resolution")]


# --- the vendor page's pitfalls -----------------------------------------------------------


@pytest.mark.parametrize("field_name", ["duration", "seconds"])
@pytest.mark.parametrize("number", [8, 4, 8.0])
def test_duration_sent_as_a_number_is_the_upstream_parse_error(field_name, number):
    result = resolve(body(**{field_name: number}))
    assert not result.ok
    assert (field_name, "parse_request_failed") in codes(result)
    assert "string" in result.errors[0].message
    assert result.wire is None


def test_number_duration_is_an_error_even_when_overridden():
    # The gateway parses the body before it applies precedence, so the number still fails.
    result = resolve(body(duration=8, metadata={"durationSeconds": 8}))
    assert ("duration", "parse_request_failed") in codes(result)


@pytest.mark.parametrize(
    "fields, field_name",
    [
        ({"generateAudio": True}, "generateAudio"),
        ({"generateAudio": False}, "generateAudio"),
        ({"metadata": {"generateAudio": True}}, "metadata.generateAudio"),
        ({"generate_audio": True}, "generate_audio"),
        ({"metadata": {"generate_audio": False}}, "metadata.generate_audio"),
    ],
)
def test_generate_audio_anywhere_is_invalid_argument(fields, field_name):
    result = resolve(body(**fields))
    assert (field_name, "INVALID_ARGUMENT") in codes(result)
    assert "prompt" in result.errors[0].message  # tells the user where audio intent goes


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
@pytest.mark.parametrize("duration", ["4", "6"])
def test_1080p_and_4k_need_8_seconds(resolution, duration):
    result = resolve(body(duration=duration, metadata={"resolution": resolution}))
    assert ("duration", "duration_requires_8") in codes(result)
    assert resolution in result.errors[0].message


def test_1080p_from_size_with_4_seconds_is_refused_on_the_winning_field():
    result = resolve(body(size="1920x1080", seconds="4"))
    assert ("seconds", "duration_requires_8") in codes(result)


def test_1080p_with_default_duration_is_fine():
    assert resolve(body(size="1920x1080")).ok


def test_4k_with_durationSeconds_8_beating_duration_4_is_fine():
    assert resolve(body(duration="4", metadata={"resolution": "4k", "durationSeconds": 8})).ok


@pytest.mark.parametrize(
    "fields, field_name, code",
    [
        ({"model": "veo-3.0"}, "model", "invalid_value"),
        ({"model": None}, "model", "required"),
        ({"model": 3}, "model", "invalid_value"),
        ({"duration": "5"}, "duration", "invalid_value"),
        ({"seconds": "12"}, "seconds", "invalid_value"),
        ({"duration": ["8"]}, "duration", "parse_request_failed"),
        ({"size": "1024x1024"}, "size", "invalid_value"),
        ({"size": 1280}, "size", "invalid_type"),
        ({"metadata": {"resolution": "8k"}}, "metadata.resolution", "invalid_value"),
        ({"metadata": {"aspectRatio": "1:1"}}, "metadata.aspectRatio", "invalid_value"),
        ({"metadata": {"aspectRatio": 1.77}}, "metadata.aspectRatio", "invalid_type"),
        ({"metadata": {"durationSeconds": 5}}, "metadata.durationSeconds", "invalid_value"),
        ({"metadata": {"durationSeconds": "eight"}}, "metadata.durationSeconds", "invalid_type"),
        ({"metadata": {"personGeneration": "everyone"}}, "metadata.personGeneration", "invalid_value"),
        ({"metadata": "720p"}, "metadata", "invalid_type"),
    ],
)
def test_every_enum_and_type_is_checked(fields, field_name, code):
    result = resolve(body(**fields))
    assert (field_name, code) in codes(result)
    assert all(issue.message for issue in result.errors)


@pytest.mark.parametrize(
    "seed, code",
    [(-1, "out_of_range"), (4_294_967_296, "out_of_range"), (1.5, "invalid_type"), ("7", "invalid_type"), (True, "invalid_type")],
)
def test_seed_must_be_an_integer_in_uint32_range(seed, code):
    assert ("metadata.seed", code) in codes(resolve(body(metadata={"seed": seed})))


@pytest.mark.parametrize("seed", [0, 7, 20260521, 4_294_967_295])
def test_seed_bounds_are_inclusive(seed):
    result = resolve(body(metadata={"seed": seed}))
    assert result.ok
    assert result.wire["metadata"]["seed"] == seed


@pytest.mark.parametrize("prompt", [None, "", "   \n\t"])
def test_blank_prompt_is_refused(prompt):
    assert ("prompt", "required") in codes(resolve(body(prompt=prompt)))


def test_absurdly_long_prompt_is_refused_with_its_length():
    result = resolve(body(prompt="x" * (params.PROMPT_MAX_CHARS + 1)))
    assert ("prompt", "too_long") in codes(result)
    assert "4,001" in result.errors[0].message


@pytest.mark.parametrize("payload", [None, [], "a prompt", 8, True])
def test_a_body_that_is_not_an_object_is_one_clear_error(payload):
    result = resolve(payload)
    assert not result.ok
    assert [(i.field, i.code) for i in result.errors] == [("body", "not_object")]


def test_missing_seed_is_a_warning_not_an_error():
    result = resolve(body())
    assert result.ok
    assert any("No seed" in w for w in result.warnings)


def test_unknown_top_level_field_is_warned_and_not_sent():
    result = resolve(body(n=2))
    assert result.ok
    assert "n" not in result.wire
    assert any("'n'" in w or '"n"' in w for w in result.warnings)


def test_metadata_resolution_is_case_insensitive_like_the_gateway():
    result = resolve(body(metadata={"resolution": "4K"}))
    assert result.ok
    assert result.effective["resolution"] == "4k"


def test_durationSeconds_as_a_numeric_string_is_sent_as_an_integer_with_a_warning():
    result = resolve(body(metadata={"durationSeconds": "6"}))
    assert result.ok
    assert result.effective["duration"] == "6"
    assert any("integer" in w for w in result.warnings)


# --- the wire body --------------------------------------------------------------------------


def test_wire_body_has_string_duration_no_audio_flag_and_stable_key_order():
    result = resolve(body(seconds="6", metadata={"negativePrompt": "blurry", "seed": 3, "aspectRatio": "9:16", "customKnob": 1}))
    wire = result.wire
    assert list(wire) == ["model", "prompt", "duration", "size", "metadata"]
    assert list(wire["metadata"]) == ["resolution", "aspectRatio", "seed", "negativePrompt", "customKnob"]
    assert wire["duration"] == "6" and isinstance(wire["duration"], str)
    assert "seconds" not in wire and "durationSeconds" not in wire["metadata"]
    assert "generateAudio" not in json.dumps(wire)


def test_unknown_metadata_passes_through_to_the_wire():
    result = resolve(body(metadata={"personGeneration": "allow_adult", "compressionQuality": "optimized"}))
    assert result.wire["metadata"]["personGeneration"] == "allow_adult"
    assert result.wire["metadata"]["compressionQuality"] == "optimized"


def test_vendor_example_resolves_to_itself():
    vendor = {
        "model": FAST_MODEL,
        "prompt": PROMPT,
        "duration": "8",
        "size": "1280x720",
        "metadata": {"resolution": "720p", "aspectRatio": "16:9", "seed": 20260521, "negativePrompt": "blurry, watermark, distorted, low quality"},
    }
    result = resolve(vendor)
    assert result.ok
    assert result.wire == vendor
    assert result.warnings == ()


def test_to_json_has_exactly_the_documented_keys():
    out = resolve(body(metadata={"seed": 7})).to_json()
    assert list(out) == ["ok", "effective", "source", "errors", "warnings", "wire", "price_usd", "transport", "image"]
    assert list(out["effective"]) == ["model", "prompt", "duration", "resolution", "aspect_ratio", "size", "seed", "negative_prompt"]
    assert set(out["source"]) == {"duration", "resolution", "aspect_ratio"}
    json.dumps(out)


# --- price --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, price", [(FAST_MODEL, 0.30), (STANDARD_MODEL, 1.20)])
def test_price_is_flat_per_model(model, price):
    for extra in ({}, {"metadata": {"resolution": "4k"}}, {"duration": "4"}):
        assert resolve(body(model=model, **extra)).price_usd == price


def test_sweep_estimate_is_n_times_price():
    assert params.sweep_price_usd(FAST_MODEL, 8) == 2.40
    assert params.sweep_price_usd(STANDARD_MODEL, 3) == 3.60
    assert params.sweep_price_usd("nope", 3) is None


# --- snippets and form bodies -----------------------------------------------------------------


def test_curl_snippet_is_runnable_shell_with_the_key_redacted():
    wire = resolve(body(metadata={"seed": 1, "negativePrompt": "it's blurry"})).wire
    snippet = params.curl_snippet(wire)
    tokens = shlex.split(snippet.replace("\\\n", " "))
    assert tokens[:4] == ["curl", "-sS", "-X", "POST"]
    assert json.loads(tokens[tokens.index("-d") + 1]) == wire
    assert "Bearer $APIYI_API_KEY" in snippet


def test_python_snippet_compiles_and_reads_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("APIYI_API_KEY", "sk-from-env")
    wire = resolve(body(metadata={"seed": 1, "flag": True, "none": None})).wire
    snippet = params.python_snippet(wire, "http://127.0.0.1:9/v1")
    compile(snippet, "<snippet>", "exec")
    assert "os.environ['APIYI_API_KEY']" in snippet
    namespace: dict = {}
    exec(snippet.split("resp =")[0], namespace)  # everything up to the HTTP call
    assert namespace["body"] == wire


def test_build_body_leaves_blanks_out_so_precedence_can_be_explored():
    raw = build_body(model=FAST_MODEL, prompt="p", duration="6", size="", resolution=None, aspect_ratio="9:16", seed=5, duration_seconds=None)
    assert raw == {"model": FAST_MODEL, "prompt": "p", "duration": "6", "metadata": {"aspectRatio": "9:16", "seed": 5}}


def test_with_seed_copies_and_sets_the_seed():
    original = body(metadata={"seed": 1})
    changed = params.with_seed(original, 9)
    assert changed["metadata"]["seed"] == 9 and original["metadata"]["seed"] == 1


# --- properties -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_values = {
    "model": st.sampled_from([*params.MODELS, "x", ""]) | json_values,
    "prompt": st.text(max_size=40) | json_values,
    "duration": st.sampled_from([*params.DURATIONS, "5", 8]) | json_values,
    "seconds": st.sampled_from([*params.DURATIONS, "10"]) | json_values,
    "size": st.sampled_from([*params.SIZES, "1x1"]) | json_values,
    "generateAudio": json_values,
}
metadata_values = {
    "resolution": st.sampled_from([*params.RESOLUTIONS, "8k"]) | json_values,
    "aspectRatio": st.sampled_from([*params.ASPECT_RATIOS, "4:3"]) | json_values,
    "seed": st.integers(-5, params.SEED_MAX + 5) | json_values,
    "durationSeconds": st.sampled_from([4, 6, 8, "8", 5]) | json_values,
    "negativePrompt": st.text(max_size=10) | json_values,
}
bodies = st.fixed_dictionaries({}, optional={**field_values, "metadata": st.fixed_dictionaries({}, optional=metadata_values) | json_values})


@settings(max_examples=400, deadline=None)
@given(bodies | json_values)
def test_resolve_never_raises_and_always_serialises(payload):
    result = resolve(payload)
    json.dumps(result.to_json())
    assert result.ok == (not result.errors)
    assert (result.wire is not None) == result.ok


# Valid text: no lone surrogates and no NUL (those are errors, see test_hostile_input.py).
valid_text = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
valid_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(params.MODELS), "prompt": st.text(valid_text, min_size=1, max_size=30).filter(str.strip)},
    optional={
        "duration": st.sampled_from(params.DURATIONS),
        "seconds": st.sampled_from(params.DURATIONS),
        "size": st.sampled_from(params.SIZES),
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "resolution": st.sampled_from(params.RESOLUTIONS),
                "aspectRatio": st.sampled_from(params.ASPECT_RATIOS),
                "seed": st.integers(0, params.SEED_MAX),
                "durationSeconds": st.sampled_from([4, 6, 8]),
                "negativePrompt": st.text(valid_text, max_size=20),
            },
        ),
    },
)


@settings(max_examples=400, deadline=None)
@given(valid_bodies)
def test_valid_requests_round_trip_through_the_wire_body(payload):
    first = resolve(payload)
    if not first.ok:
        # The only way a body of valid enums fails is 1080p/4k with 4 or 6 seconds.
        assert {issue.code for issue in first.errors} == {"duration_requires_8"}
        return
    second = resolve(first.wire)
    assert second.ok
    assert second.effective == first.effective
    assert second.wire == first.wire
