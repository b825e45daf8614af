"""Comparing runs: proxies, SSIM, the set and its differences, reviews, the report and `python -m lab compare`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from compare_runs import PROMPT, Runs, make_runs
from lab import frames
from lab.compare import proxies, similarity
from lab.compare.pipeline import Measure, compare_runs
from lab.compare.report import CELL_KEYS, ReportError, report_html, write_report, zip_report
from lab.compare.set import LABEL_FIELDS, CompareError, load_set, odd_fields
from lab.errors import MediaError
from lab.store import Store, default_store_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory, simulator, render_cache) -> Runs:
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 1.0})) as failing:
        return make_runs(tmp_path_factory.mktemp("compare-data"), simulator, failing)


@pytest.fixture
def store(runs: Runs):
    with Store(default_store_path(runs.data_dir)) as opened:
        yield opened


def lab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pair(figures: list[dict], a: str, b: str) -> dict:
    return next(s for s in figures if {s["a"], s["b"]} == {a, b})


# ---------------------------------------------------------------- the command line


def test_same_prompt_and_seed_score_at_least_099_and_above_a_different_seed(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = lab("compare", runs.sweep_id, runs.seed1_again, "--data-dir", str(runs.data_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert result["ok"] and [c["task_id"] for c in result["cells"]] == [runs.seed1, runs.seed2, runs.seed1_again]
    same = pair(result["similarity"], runs.seed1, runs.seed1_again)
    different = pair(result["similarity"], runs.seed1, runs.seed2)
    assert same["ssim_mean"] >= 0.99 and same["ssim_min"] >= 0.99
    assert same["ssim_mean"] > different["ssim_mean"]
    assert (out / "index.html").is_file() and len(list((out / "media").glob("*.mp4"))) == 3


def test_compare_json_has_exactly_the_documented_schema(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert lab("compare", runs.seed1, runs.seed2, "--data-dir", str(runs.data_dir), "--out", str(out)).returncode == 0
    data = json.loads((out / "compare.json").read_text())
    assert set(data) == {"cells", "similarity", "review"}
    assert set(data["review"]) == {"mode", "report_id", "link_extra", "takes"}
    assert set(data["review"]["takes"]) == {runs.seed1, runs.seed2}
    assert (out / "review.csv").read_text().startswith("take,task_id,prompt,seed,status,")
    assert all(tuple(cell) == CELL_KEYS for cell in data["cells"])
    assert [set(s) for s in data["similarity"]] == [{"a", "b", "ssim_mean", "ssim_min", "timeline"}]
    assert len(data["similarity"][0]["timeline"]) == 4  # one figure per second of a 4 s clip
    first = data["cells"][0]
    assert first["effective"]["seed"] == 1 and first["wire"]["metadata"]["seed"] == 1
    assert first["differs"] == ["seed"]
    assert (out / first["proxy"]).is_file() and first["original"] is None
    assert not (out / "media" / "originals").exists()


def test_with_originals_copies_the_saved_videos_byte_for_byte(runs: Runs, store: Store, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = lab("compare", runs.seed1, runs.seed2, "--data-dir", str(runs.data_dir), "--out", str(out), "--with-originals")
    assert proc.returncode == 0, proc.stderr
    for cell in json.loads((out / "compare.json").read_text())["cells"]:
        original = Path(store.get(cell["task_id"]).video_path)
        assert (out / cell["original"]).read_bytes() == original.read_bytes()


def test_a_run_without_a_video_exits_1_and_the_rest_are_compared(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = lab("compare", runs.seed1, runs.seed2, runs.failed, "--data-dir", str(runs.data_dir), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    result = summary(proc)
    failed = next(c for c in result["cells"] if c["task_id"] == runs.failed)
    assert failed["proxy"] is None and "failed" in failed["problem"]
    assert len(result["similarity"]) == 1 and any(runs.failed in p for p in result["problems"])
    page = (out / "index.html").read_text()
    assert "the task failed" in page


def test_an_unknown_id_exits_2_and_writes_nothing(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = lab("compare", runs.seed1, runs.seed2, "task_doesNotExist", "--data-dir", str(runs.data_dir), "--out", str(out))
    assert proc.returncode == 2
    assert "task_doesNotExist" in summary(proc)["error"] and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_unknown_id_beside_one_known_run_is_named_first(runs: Runs, tmp_path: Path) -> None:
    proc = lab("compare", "task_nope", runs.seed1, "--data-dir", str(runs.data_dir), "--out", str(tmp_path / "report"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: No such task or sweep in the journal: task_nope.")
    assert summary(proc)["error"].startswith("No such task or sweep in the journal: task_nope.")


def test_bad_flags_exit_2_with_a_json_line(runs: Runs) -> None:
    proc = lab("compare", runs.seed1, "--no-such-flag")
    assert proc.returncode == 2 and summary(proc)["ok"] is False


def test_an_existing_report_directory_is_refused_unless_forced(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["compare", runs.seed1, runs.seed2, "--data-dir", str(runs.data_dir), "--out", str(out)]
    refused = lab(*args)
    assert refused.returncode == 2 and "already exists" in summary(refused)["error"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    forced = lab(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "index.html", "media", "review.csv"]  # replaced


# ---------------------------------------------------------------- proxies


def test_a_proxy_is_h264_long_side_960_faststart_with_the_same_frames(runs: Runs, store: Store, tmp_path: Path) -> None:
    record = store.get(runs.portrait)
    proxy = proxies.make_proxy(record.video_path, tmp_path / "p.mp4")
    info, original = frames.probe(proxy), frames.probe(record.video_path)
    assert (info.width, info.height) == (540, 960) and info.codec == "h264"
    assert info.fps == original.fps and abs(info.duration - original.duration) < 0.05
    head = proxy.read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")  # faststart: the index comes first


def test_a_proxy_is_made_once_and_reused(runs: Runs, store: Store, tmp_path: Path) -> None:
    record = store.get(runs.seed2)
    first = proxies.ensure_proxy(tmp_path, runs.seed2, record.video_path)
    stamp = first.stat().st_mtime_ns
    again = proxies.ensure_proxy(tmp_path, runs.seed2, record.video_path)
    assert again == tmp_path / "proxies" / f"{runs.seed2}.mp4" and again.stat().st_mtime_ns == stamp


def test_a_small_video_is_not_enlarged(tmp_path: Path) -> None:
    small = tmp_path / "small.mp4"
    subprocess.run([frames._ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=1",
                    "-pix_fmt", "yuv420p", str(small)], check=True)
    info = frames.probe(proxies.make_proxy(small, tmp_path / "p.mp4"))
    assert (info.width, info.height) == (320, 180)


def test_a_file_that_is_not_a_video_gives_a_media_error_and_no_proxy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(MediaError):
        proxies.make_proxy(bad, tmp_path / "p.mp4")
    assert list(tmp_path.iterdir()) == [bad]


def test_a_task_id_that_is_not_a_safe_file_name_is_refused() -> None:
    with pytest.raises(MediaError):
        proxies.proxy_path("/tmp", "../../etc/passwd")


# ---------------------------------------------------------------- similarity


def test_ssim_stats_are_parsed_per_frame_and_grouped_per_second() -> None:
    text = "".join(f"n:{n} Y:0.9 U:0.9 V:0.9 All:{0.5 if n == 30 else 0.9:.6f} (10.0)\n" for n in range(1, 49))
    values = similarity.parse_stats(text)
    assert len(values) == 48 and values[29] == 0.5
    result = similarity.summarize("a", "b", values, fps=24)
    assert result.ssim_min == 0.5 and result.timeline[0] == 0.9 and result.timeline[1] < 0.9


def test_identical_frames_parse_as_one_even_when_ffmpeg_says_inf() -> None:
    assert similarity.parse_stats("n:1 Y:1.000000 U:1.000000 V:1.000000 All:1.000000 (inf)\n") == [1.0]


def test_similarity_is_cached_per_pair(runs: Runs, store: Store, tmp_path: Path) -> None:
    videos = {t: store.get(t).video_path for t in (runs.seed1, runs.seed2)}
    first = similarity.similarity_matrix(tmp_path, videos)
    cached = list((tmp_path / "similarity").glob("*.json"))
    assert len(cached) == 1
    cached[0].write_text(cached[0].read_text().replace(str(first[0].ssim_mean), "0.123"))
    assert similarity.similarity_matrix(tmp_path, videos)[0].ssim_mean == 0.123


def test_mixed_aspect_ratios_are_measured_without_failing(runs: Runs, store: Store, tmp_path: Path) -> None:
    videos = {t: store.get(t).video_path for t in (runs.seed1, runs.portrait)}
    (result,) = similarity.similarity_matrix(tmp_path, videos)
    assert 0 < result.ssim_mean < 0.9


# ---------------------------------------------------------------- the set


def test_a_sweep_id_expands_to_its_runs_and_differences_are_marked(runs: Runs, store: Store) -> None:
    cset = load_set(store, [runs.sweep_id, runs.portrait])
    assert cset.task_ids == [runs.seed1, runs.seed2, runs.portrait]
    assert set(cset.differing) == {"seed", "aspect_ratio", "size"}
    # Every seed differs; only the 9:16 take differs from the other two on aspect and size.
    assert cset.cells[0].differs == ("seed",) and set(cset.cells[2].differs) == {"seed", "aspect_ratio", "size"}
    assert cset.cells[0].fields["prompt"] == PROMPT and cset.cells[2].fields["aspect_ratio"] == "9:16"


def cells_with(**columns) -> list[dict]:
    """Label fields of n cells, one list of values per field (the rest the same in every cell)."""
    count = len(next(iter(columns.values())))
    return [{name: columns[name][n] if name in columns else "same" for name in LABEL_FIELDS} for n in range(count)]


def test_only_the_cell_whose_prompt_differs_from_the_others_is_marked() -> None:
    differing, per_cell = odd_fields(cells_with(prompt=["a fox", "a fox", "a heron"]))
    assert differing == ("prompt",) and per_cell == [(), (), ("prompt",)]


@pytest.mark.parametrize("values", [["a", "b"], ["a", "b", "c"], ["a", "a", "b", "b"]])
def test_with_no_value_most_cells_share_every_cell_is_marked(values: list[str]) -> None:
    assert odd_fields(cells_with(seed=values))[1] == [("seed",)] * len(values)


def test_cells_that_agree_are_not_marked() -> None:
    assert odd_fields(cells_with(seed=[1, 1, 1])) == ((), [(), (), ()])


def test_a_set_is_titled_by_its_prompt_else_its_sweep(runs: Runs, store: Store) -> None:
    assert load_set(store, [runs.sweep_id]).title == f"2 takes of “{PROMPT}”"
    body = {"model": "veo-3.1-fast-generate-preview", "duration": "4"}
    from lab import params

    for n, prompt in enumerate(("a heron at dawn", "a heron at dusk")):
        request = {**body, "prompt": prompt}
        store.record_submitted(f"task_variant{n}", params.resolve(request), request, "sweep_variants_x")
    assert load_set(store, ["sweep_variants_x"]).title == "sweep_variants_x: 2 runs, 2 prompts"


def test_the_report_is_titled_by_the_sets_prompt(runs: Runs, store: Store, tmp_path: Path) -> None:
    page = report_html(compare_runs(store, tmp_path, [runs.sweep_id], measure=Measure.NONE), {})
    assert f"<title>2 takes of “{PROMPT}”</title>" in page and "Comparison of" not in page


@pytest.mark.parametrize("ids, message", [([], "at least two"), (["task_nope"], "no runs"), (["x/../y", "z"], "no runs")])
def test_sets_that_cannot_be_compared_say_why(store: Store, ids, message) -> None:
    with pytest.raises(CompareError, match=message):
        load_set(store, ids)


def test_more_than_twelve_runs_are_refused(tmp_path: Path) -> None:
    from lab import params

    with Store(tmp_path / "journal.sqlite3") as journal:
        body = {"model": params.FAST_MODEL, "prompt": PROMPT, "duration": "4"}
        for n in range(13):
            journal.record_submitted(f"task_{n}", params.resolve(body), body, "sweep_big")
        with pytest.raises(CompareError, match="13 runs selected; compare at most 12"):
            load_set(journal, ["sweep_big"])


def test_measure_none_takes_no_figures_and_cached_takes_only_measured_ones(runs: Runs, store: Store,
                                                                          tmp_path: Path) -> None:
    ids = [runs.seed1, runs.seed2]  # tmp_path as the data directory: no figure is cached yet
    assert compare_runs(store, tmp_path, ids, measure=Measure.NONE).similarity == ()
    assert compare_runs(store, tmp_path, ids, measure=Measure.CACHED).similarity == ()
    measured = compare_runs(store, tmp_path, ids, measure=Measure.ALL).similarity
    assert len(measured) == 1 and compare_runs(store, tmp_path, ids, measure=Measure.CACHED).similarity == measured


def test_runs_the_caller_may_not_see_count_as_unknown(runs: Runs, store: Store) -> None:
    cset = load_set(store, [runs.seed1, runs.seed2, runs.portrait], may_see={runs.seed1, runs.seed2}.__contains__)
    assert cset.task_ids == [runs.seed1, runs.seed2] and cset.unknown == (runs.portrait,)


# ---------------------------------------------------------------- reviews


def test_a_review_is_kept_in_the_journal_and_survives_reopening(runs: Runs, store: Store) -> None:
    store.set_review(runs.seed2, rating=1, note="best fur")
    store.set_review(runs.seed2, picked=True)
    assert any("reviews" in name for name in store.migrations())  # later migrations may follow
    with Store(store.path) as reopened:
        review = reopened.reviews([runs.seed2])[runs.seed2]
    assert (review.rating, review.note, review.picked) == (1, "best fur", True)
    store.set_review(runs.seed2, rating=None, note="", picked=False)


@pytest.mark.parametrize("change", [{"rating": 5}, {"note": "x" * 2001}])
def test_a_bad_review_is_refused(runs: Runs, store: Store, change) -> None:
    with pytest.raises(ValueError):
        store.set_review(runs.seed1, **change)


def test_reviews_are_carried_into_the_report(runs: Runs, store: Store, tmp_path: Path) -> None:
    store.set_review(runs.seed1, rating=-1, note="tail clips the frame", picked=False)
    try:
        comparison = compare_runs(store, runs.data_dir, [runs.seed1, runs.seed2])
        out = write_report(comparison, tmp_path / "r")
    finally:
        store.set_review(runs.seed1, rating=None, note="")
    cell = json.loads((out / "compare.json").read_text())["cells"][0]
    assert (cell["rating"], cell["note"], cell["picked"]) == (-1, "tail clips the frame", False)
    assert "tail clips the frame" in (out / "index.html").read_text()


# ---------------------------------------------------------------- the report


def test_the_report_refuses_to_write_a_secret(runs: Runs, store: Store, tmp_path: Path) -> None:
    comparison = compare_runs(store, runs.data_dir, [runs.seed1, runs.seed2])
    with pytest.raises(ReportError, match="API key"):
        write_report(comparison, tmp_path / "r", secrets=[PROMPT])
    assert list(tmp_path.iterdir()) == []


def test_the_report_zip_holds_the_whole_directory(runs: Runs, store: Store, tmp_path: Path) -> None:
    comparison = compare_runs(store, runs.data_dir, [runs.seed1, runs.seed2])
    out = write_report(comparison, tmp_path / "r")
    archive = zip_report(out, tmp_path / "r.zip")
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
    assert {"r/index.html", "r/compare.json", f"r/media/{runs.seed1}.mp4", f"r/media/{runs.seed2}.mp4"} == names


def test_the_report_page_references_nothing_outside_itself(runs: Runs, store: Store, tmp_path: Path) -> None:
    comparison = compare_runs(store, runs.data_dir, [runs.seed1, runs.portrait])
    page = (write_report(comparison, tmp_path / "r") / "index.html").read_text()
    page = page.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace name, never fetched
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_offsets_are_kept_with_the_set_whatever_order_it_is_named_in_and_carried_into_the_report(
        runs: Runs, store: Store, tmp_path: Path) -> None:
    from lab.compare.service import CompareService

    service = CompareService(store, runs.data_dir)
    kept = service.save_offsets([runs.seed1, runs.seed2], {runs.seed2: 12.4, "task_elsewhere": 3, runs.seed1: 0})
    try:
        assert kept == {runs.seed2: 12, runs.seed1: 0}
        comparison = compare_runs(store, runs.data_dir, [runs.seed2, runs.seed1])
        cells = json.loads((write_report(comparison, tmp_path / "r") / "compare.json").read_text())["cells"]
        assert {c["task_id"]: c["offset_frames"] for c in cells} == {runs.seed2: 12, runs.seed1: 0}
        with pytest.raises(ValueError):
            service.save_offsets([runs.seed1, runs.seed2], {runs.seed1: "soon"})
    finally:
        service.save_offsets([runs.seed1, runs.seed2], {runs.seed2: 0})


def test_each_cell_carries_its_pre_screen_and_its_parent_into_the_report(runs: Runs, store: Store,
                                                                         tmp_path: Path) -> None:
    store.record_screen(runs.seed2, {"ok": True, "issues": 1, "badges": [
        {"kind": "cut", "text": "1 cut", "at": 1.5, "title": "Hard cut at 1.5 s."}]})
    store.update(runs.seed2, parent_task_id=runs.seed1, parent_changes=["seed"])
    try:
        out = write_report(compare_runs(store, runs.data_dir, [runs.seed1, runs.seed2]), tmp_path / "r")
    finally:
        store.update(runs.seed2, parent_task_id=None, parent_changes=[])
    cells = json.loads((out / "compare.json").read_text())["cells"]
    assert cells[1]["screen"]["badges"][0]["text"] == "1 cut"
    assert cells[1]["parent"] == {"task_id": runs.seed1, "in_set": True, "changes": ["seed"]}
    assert "from A (changed seed)" in (out / "index.html").read_text()
