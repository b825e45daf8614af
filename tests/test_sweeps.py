"""The one sweep pipeline: seeds and variants read in linear time, limits before any per-item work."""

from __future__ import annotations

import random

import pytest

from lab import params, sweeps
from lab.errors import RequestInvalid

BODY = {"model": params.FAST_MODEL, "prompt": "a paper boat", "duration": "4"}


@pytest.fixture
def resolve_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Counts params.resolve calls: the per-item work a refused sweep must never start."""
    calls: list = []
    real = params.resolve

    def counting(body):
        calls.append(body)
        return real(body)

    monkeypatch.setattr(params, "resolve", counting)
    return calls


def test_seeds_from_a_list_plus_random_ones_without_duplicates():
    seeds = sweeps.parse_seeds("1, 2 3;2\n007", 2, random.Random(5))
    assert seeds[:4] == [1, 2, 3, 7] and len(seeds) == 6 and len(set(seeds)) == 6


@pytest.mark.parametrize("text", ["1, x", "-1", "+1", "1_000", "1.5", "²", "٣", str(params.SEED_MAX + 1), "9" * 4301])
def test_a_seed_that_is_not_a_whole_number_in_range_is_refused(text):
    with pytest.raises(RequestInvalid, match="0 to 4294967295"):
        sweeps.parse_seeds(text)


def test_the_largest_seed_and_leading_zeros_are_accepted():
    assert sweeps.parse_seeds(f"0, 000{params.SEED_MAX}") == [0, params.SEED_MAX]


@pytest.mark.parametrize("count", [float("nan"), float("inf"), -1, 1.5, True])
def test_a_random_count_that_is_not_a_whole_number_is_refused(count):
    with pytest.raises(RequestInvalid, match="random seeds"):
        sweeps.parse_seeds("1", count)


def test_a_20000_seed_list_is_refused_before_any_item_is_planned(resolve_calls):
    text = ", ".join(str(n) for n in range(20_000))
    with pytest.raises(RequestInvalid, match="more than this lab allows at once \\(8\\)"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text=text)
    assert resolve_calls == []


def test_a_huge_random_count_is_refused_before_a_single_seed_is_drawn(resolve_calls):
    class NoDraws(random.Random):
        def randint(self, a, b):
            raise AssertionError("a seed was drawn for a sweep that is refused")

    with pytest.raises(RequestInvalid, match="100,000,000 tasks"):
        sweeps.prepare(BODY, max_sweep=8, random_count=100_000_000, rng=NoDraws())
    assert resolve_calls == []


def test_variants_count_against_the_limit_times_seeds(resolve_calls):
    with pytest.raises(RequestInvalid, match="3 prompt variants"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text="1 2 3", variants_text="a\nb\nc")
    with pytest.raises(RequestInvalid, match="more than this lab allows"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text="1", variants_text="\n".join(f"v{n}" for n in range(100_000)))
    assert resolve_calls == []


def test_texts_beyond_their_length_limit_are_refused_at_once():
    with pytest.raises(RequestInvalid, match="seed list is"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text="1 " * sweeps.SEEDS_TEXT_MAX_CHARS)
    with pytest.raises(RequestInvalid, match="prompt variants are"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text="1", variants_text="a" * (sweeps.VARIANTS_TEXT_MAX_CHARS + 1))


def test_duplicate_seeds_count_once_against_the_limit():
    plan = sweeps.prepare(BODY, max_sweep=2, seeds_text="5, 5, 5, 6, 6")
    assert [item.seed for item in plan.items] == [5, 6]


def test_a_sweep_needs_a_seed():
    with pytest.raises(RequestInvalid, match="at least one seed"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text=" , ")


def test_plan_is_variants_times_seeds_in_row_order():
    items = sweeps.plan(BODY, [1, 2], ["a fox", "a hare"])
    assert [(i.body["prompt"], i.body["metadata"]["seed"]) for i in items] == [("a fox", 1), ("a fox", 2), ("a hare", 1), ("a hare", 2)]
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert BODY == {"model": params.FAST_MODEL, "prompt": "a paper boat", "duration": "4"}  # not changed


def test_a_variant_row_label_shows_the_start_of_its_prompt_and_keeps_the_whole_prompt():
    heron = "A heron stands in the reeds at dawn, mist over the water, slow dolly in"
    items = sweeps.plan(BODY, [7], [heron])
    assert items[0].label == "“A heron stands in the reeds…” · seed 7"
    assert (items[0].variant, items[0].variant_text, items[0].body["prompt"]) == (1, heron, heron)


def test_variants_that_start_alike_are_numbered_so_their_rows_differ():
    items = sweeps.plan(BODY, [1], ["A heron stands in the reeds at dawn", "A heron stands in the reeds at dusk"])
    assert [i.label for i in items] == ["1. “A heron stands in the reeds…” · seed 1", "2. “A heron stands in the reeds…” · seed 1"]


def test_a_seed_only_row_label_is_the_seed():
    assert [i.label for i in sweeps.plan(BODY, [3, 4])] == ["seed 3", "seed 4"]


def test_an_invalid_item_is_refused_naming_its_row():
    long_variant = "a hare " + "running far " * 400
    with pytest.raises(RequestInvalid, match="“a hare running far running…” · seed 1: prompt: prompt is 4,806 characters"):
        sweeps.prepare(BODY, max_sweep=8, seeds_text="1", variants_text="a fox\n" + long_variant)


def test_a_checked_plan_carries_each_items_resolution_and_the_worst_case_price():
    plan = sweeps.prepare(BODY, max_sweep=8, seeds_text="1 2 3")
    assert [r.effective["seed"] for r in plan.resolutions] == [1, 2, 3]
    assert plan.price_usd == pytest.approx(0.90)


def test_the_estimate_count_is_bounded_by_the_limit():
    assert sweeps.count_tasks("1 2", 1, "a\nb", max_sweep=8) == 6
    assert sweeps.count_tasks(" ".join(map(str, range(20_000))), 0, "", max_sweep=8) == 9
    assert sweeps.count_tasks("1", 10**12, "", max_sweep=8) == 9


def test_the_estimate_for_a_huge_list_does_not_claim_an_exact_count():
    from lab import presentation as pres

    count = sweeps.count_tasks(" ".join(map(str, range(20_000))), 0, "", max_sweep=8)
    text = pres.sweep_estimate_text(params.FAST_MODEL, count, 8, 4)
    assert "More than 8 tasks" in text and "9 tasks" not in text


def test_a_reason_shared_by_every_row_is_stated_once():
    with pytest.raises(RequestInvalid) as refused:
        sweeps.prepare({**BODY, "prompt": ""}, max_sweep=8, seeds_text="5 6 7 8 9")
    message = str(refused.value)
    assert message.count("prompt is required") == 1, message
    assert message.startswith("seed 5, seed 6, seed 7 and 2 more: prompt: prompt is required"), message
