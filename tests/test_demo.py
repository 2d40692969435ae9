"""make demo, the main job on the embedded default, ends with an equal verify."""
import os
import subprocess
import sys

from tests.driver_helpers import ROOT


def test_demo_runs_end_to_end_and_verifies(mdb, tmp_path):
    info = mdb.info
    source = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}_demo"
    env = {**os.environ, "WLSYNC_DEMO_SOURCE": source, "WLSYNC_DEMO_WL": str(tmp_path / "wl.db")}
    try:
        result = subprocess.run([sys.executable, str(ROOT / "demo" / "run_demo.py")], capture_output=True,
                                text=True, env=env, timeout=300)
    finally:
        mdb.execute(f'DROP DATABASE IF EXISTS "{info.dbname}_demo" WITH (FORCE)')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verify: WL == MDB" in result.stdout
    assert result.stdout.rstrip().endswith("WL == MDB             yes")
