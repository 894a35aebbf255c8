"""bench/gpu_check.sh: its --smoke run (the GPU measurement's code on the CPU at tiny sizes) writes a
report with every section and positive numbers; a step that fails or overruns keeps its rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import require_assets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_a_step_stopped_at_its_budget_keeps_the_rows_it_printed():
    status, seconds, rows, _, _ = gpu_check.run_child(child("""
        import time
        print('RESULT {"objects": 1, "ms_per_frame": 5.0}', flush=True)
        time.sleep(60)
        print('RESULT {"objects": 2, "ms_per_frame": 6.0}', flush=True)
    """), budget=3)
    assert status == "timeout" and seconds < 20
    assert rows == [{"objects": 1, "ms_per_frame": 5.0}]


def test_a_failing_step_is_reported_with_its_rows_and_error():
    status, _, rows, err, code = gpu_check.run_child(child("""
        print('RESULT {"objects": 1}')
        raise SystemExit("CUDA out of memory")
    """), budget=30)
    assert (status, code, rows) == ("failed", 1, [{"objects": 1}])
    assert "CUDA out of memory" in err


def test_slices_share_what_is_left_among_the_counts_still_to_measure():
    slices = gpu_check.Slices(budget=40, parts=4, reserve=0)
    assert slices.next() - time.perf_counter() == pytest.approx(10, abs=0.5)
    slices.end = time.perf_counter() + 9  # the first count (compiling) left 9 of the 40 seconds
    assert slices.next() - time.perf_counter() == pytest.approx(3, abs=0.5)  # 3 counts to go


def test_the_full_plan_fits_its_deadline_and_runs_the_baselines_first():
    plan = gpu_check.FULL
    assert plan.steps()[:3] == ["grid_off", "grid_reference", "grid_auto"]
    assert plan.steps()[-1] == "grid_on"  # the least needed runs on what is left
    assert plan.deadline_s < 8 * 60 - 20  # with the wheels' install, under 8 minutes
    assert plan.warmup > 7  # past SAM 2's memory fill-up (num_maskmem = 7 frames)
    assert set(plan.budgets) == set(plan.steps())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    require_assets()
    out = tmp_path_factory.mktemp("gpu_check")
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("OUT", None)
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=1300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), done.stdout


def test_smoke_runs_every_step(smoke):
    report, _ = smoke
    assert set(report) >= {"config", "steps", "grid", "e2e", "memory", "total_s"}
    steps = report["steps"]
    assert {name: entry["status"] for name, entry in steps.items()} == {
        "weights": "ok", "grid_off": "ok", "grid_reference": "ok", "grid_auto": "ok", "e2e_128": "ok",
        "memory": "ok", "grid_on": "skipped"}, json.dumps(steps, indent=1)[:3000]


def test_smoke_grid_has_every_mode_and_count_with_positive_numbers(smoke):
    report, _ = smoke
    grid = {(r["mode"], r["objects"]): r for r in report["grid"]}
    assert set(grid) == {(mode, k) for mode in ("off", "auto", "reference") for k in (1, 2)}
    for row in grid.values():
        assert "error" not in row, row
        assert row["frames"] >= 2 and row["warmup_frames"] == 2
        for key in ("ms_per_frame", "median_ms", "fps", "peak_mb", "warmup_s"):
            assert row[key] > 0, (key, row)


def test_smoke_e2e_times_video_json_engine_alone_and_the_gsam2_rule(smoke):
    report, _ = smoke
    assert set(report["e2e"]) == {"128p"}
    for name, result in report["e2e"].items():
        assert result["config"]["height"] == int(name[:-1]) and result["config"]["compile"] in ("auto", "off")
        runs = result["runs"]
        assert set(runs) == {"promptrack, video + JSON", "engine alone, same frames and objects",
                             "gsam2 rule, no outputs"}
        for run in runs.values():
            assert run["frames"] == 6 and run["fps"] > 0 and run["seconds"] > 0
        for run in ("promptrack, video + JSON", "engine alone, same frames and objects"):
            assert runs[run]["steady_fps"] > 0 and runs[run]["warmup_s"] > 0
        # YOLOX found a car, SAM 2 carried it, and the engine-alone replay prompted it too
        assert runs["promptrack, video + JSON"]["tracked_objects"] > 0
        assert runs["engine alone, same frames and objects"]["calls"]["add"] >= 1


def test_smoke_memory_and_the_table_printed_last(smoke):
    report, stdout = smoke
    memory = report["memory"]
    assert memory["mb_at_3"] > 0 and memory["mb_at_6"] > 0 and memory["frames"] == 6
    last = stdout.strip().splitlines()
    assert last[-1].startswith("steps: ") and any(line.startswith("engine grid") for line in last[-12:])
    assert any(line.startswith("e2e 128p") for line in last[-12:])


def test_the_table_shows_failed_and_missing_counts_and_partial_e2e():
    report = {"config": {"objects": [1, 16], "model": "m", "image_size": 1024, "hardware": {"gpu": "H100"}},
              "steps": {"grid_off": {"status": "ok"}, "grid_auto": {"status": "ok"},
                        "grid_reference": {"status": "timeout"}, "e2e_720": {"status": "timeout"}},
              "grid": [{"mode": "off", "objects": 1, "ms_per_frame": 20.0, "peak_mb": 900.0, "warmup_s": 1.5},
                       {"mode": "off", "objects": 16, "ms_per_frame": 40.0, "peak_mb": 1200.0, "warmup_s": 2.0},
                       {"mode": "auto", "objects": 1, "error": "RuntimeError: capture failed"}],
              "e2e": {"720p": {"config": {"compile": "off"},
                               "runs": {"promptrack, video + JSON": {"fps": 25.0, "steady_fps": 30.0,
                                                                     "tracked_objects": 5.0}}}},
              "memory": {}, "total_s": 400}
    lines = gpu_check.table(report).splitlines()
    assert "  off        20.0 (900) | 1.5 / 40.0 (1200) | 2.0" in lines
    assert "  auto       error / -" in lines  # failed at 1, not reached at 16
    assert "  reference  timeout" in lines and "  on         not run" in lines
    assert "e2e 720p (off, 5.0 objects): video+JSON 25.0 FPS, steady 30.0" in lines
    assert lines[-1] == ("steps: grid_off ok, grid_auto ok, grid_reference timeout, e2e_720 timeout; total 400 s")
