"""The adaptive-rate benchmark: a one-photo run writes every timing, and its budget really trims the key region."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "adapt.py"
PIECES = ("plan", "rank_faces_and_saliency", "rank_saliency", "centre_first_and_fit")
MODES = ("fixed", "adaptive", "importance_budget")


def test_a_short_run_writes_every_timing(tmp_path):
    out = tmp_path / "adapt.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--images", "1", "--repeats", "1", "--out", str(out)],
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["command"].endswith("--out " + str(out)) and report["machine"]["torch_threads"] == 1
    rows = report["images"]
    assert len(rows) == 2 and {r["image"][:4] for r in rows} == {"face", "kodi"}  # one people photo, one Kodak
    for row in rows:
        for piece in PIECES:
            assert row[piece]["wall_ms"] > 0 and row[piece]["cpu_ms"] >= 0, piece
        assert all(row["encode"][mode]["wall_ms"] > 0 for mode in MODES)
        # the budget holds about half the blocks at 1/24, so the importance frame really drops some
        assert 0.3 * row["key_blocks"] < row["budget_kept_blocks"] < 0.7 * row["key_blocks"]
    assert set(report["summary_cpu_ms"]) == set(PIECES) | {f"encode_{mode}" for mode in MODES}
