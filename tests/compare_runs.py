"""Real journalled runs for the comparison tests (imported as ``compare_runs``).

A sweep of seeds 1 and 2, the same prompt and seed 1 again as a single run, a
9:16 take and a failed task, all through the runner against real simulators:
short 4 s 720p clips, so the whole set renders in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROMPT = "a red fox trotting through fresh snow"
BODY = {"model": "veo-3.1-fast-generate-preview", "prompt": PROMPT, "duration": "4", "metadata": {"resolution": "720p"}}


@dataclass(frozen=True)
class Runs:
    data_dir: Path
    sweep_id: str
    seed1: str  # in the sweep
    seed2: str  # in the sweep
    seed1_again: str  # same prompt and seed, a separate run
    portrait: str  # 9:16, seed 3
    failed: str  # the service said failed: no video


def make_runs(data_dir: Path, simulator, failing_simulator) -> Runs:
    from lab.client import VideosClient
    from lab.runner import Runner
    from lab.store import Store, default_store_path

    store = Store(default_store_path(data_dir))
    try:
        def runner(sim) -> Runner:
            client = VideosClient.scaled(sim.base_url, "sk-test-compare", time_scale=0.02)
            return Runner(client, store, data_dir, thumbs=0, preview=False)

        good = runner(simulator)
        sweep = good.run_sweep(good.plan_sweep(BODY, seeds=[1, 2]), contact_sheet=False)
        assert sweep.ok, [r.error for r in sweep.results]
        again = good.run_one({**BODY, "metadata": {"resolution": "720p", "seed": 1}})
        portrait = good.run_one({**BODY, "metadata": {"resolution": "720p", "aspectRatio": "9:16", "seed": 3}})
        failed = runner(failing_simulator).run_one({**BODY, "metadata": {"resolution": "720p", "seed": 4}})
        assert again.ok and portrait.ok and failed.status == "failed"
        return Runs(data_dir, sweep.sweep_id, sweep.results[0].task_id, sweep.results[1].task_id,
                    again.task_id, portrait.task_id, failed.task_id)
    finally:
        store.close()
