"""Per-run records as Parquet (jaxlab.records): a part per chunk with the stored dtypes, read
lazily and by column, the same table in memory and on disk, runs.csv as an export (the bytes
the writer before Parquet wrote), old run directories with runs.csv, and pyarrow missing."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jaxlab.cli import main
from jaxlab.config import SweepConfig
from jaxlab.results import load_run, write_csv
from jaxlab.sweep import run_sweep

DATA = Path(__file__).parent / "data"
CFG = SweepConfig(n_runs=16, chunk_size=8, keep_runs=True).with_settings(
    lr=[0.5, 1.0], scale=1.0, max_steps=20, widths=[[2, 2, 1], [2, 3, 1]]
)  # 4 cells, 64 restarts, 8 parts; widths a string axis
CLI = ["--lr", "0.5,1", "--scale", "1", "--n-runs", "16", "--max-steps", "20", "--chunk-size", "8"]


def _jaxlab(env, cwd, *argv, code=None):
    cmd = [sys.executable, "-m", "jaxlab", *argv] if code is None else [sys.executable, "-c", code]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "run"
    mem = run_sweep(CFG, None, n_devices=1, figures=False, progress=False)
    run_sweep(CFG, out, n_devices=1, figures=False, progress=False)
    return out, mem


def test_a_part_per_chunk_with_its_dtypes(run):
    out, _ = run
    parts = sorted((out / "runs").glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:07d}.parquet" for i in range(8)]
    schema = pq.read_schema(parts[0])
    want = {
        "run": pa.int64(), "cell": pa.int32(), "lr": pa.float64(),
        "widths": pa.dictionary(pa.int32(), pa.string()), "final_loss": pa.float64(),
        "steps": pa.int32(), "status": pa.int32(), "success": pa.bool_(),
        "status_name": pa.dictionary(pa.int8(), pa.string()),
    }  # fmt: skip
    assert dict(zip(schema.names, schema.types)) == want
    assert all(pq.read_metadata(p).num_rows == 8 for p in parts)
    df = pq.read_table(out / "runs").to_pandas()  # the parts are one dataset, in run order
    assert df["run"].tolist() == list(range(64)) and df["widths"].dtype == "category"


def test_load_is_lazy_and_reads_by_column(run):
    out, mem = run
    res = load_run(out)
    assert res.runs._cache == {}  # cells loaded, no record read
    assert list(res.runs) == list(mem.runs) and len(res.runs) == 9
    np.testing.assert_array_equal(res.runs["final_loss"], mem.runs["final_loss"])
    assert set(res.runs._cache) == {"final_loss"}  # that column only
    table = res.runs_table(columns=["run", "widths"])
    assert table.column_names == ["run", "widths"] and table.num_rows == 64
    ds = res.runs.dataset()
    assert ds.to_table(filter=pc.field("cell") == 3).column("run").to_pylist() == list(
        range(48, 64)
    )


def test_memory_and_disk_give_the_same_table(run):
    out, mem = run
    disk = load_run(out).runs.columns()
    assert disk.keys() == mem.runs.keys()
    for k in disk:
        assert disk[k].dtype == mem.runs[k].dtype, k
        np.testing.assert_array_equal(disk[k], mem.runs[k], err_msg=k)
    # As pyarrow tables (the parts' dictionaries are per part: compared by value)
    pd.testing.assert_frame_equal(
        load_run(out).runs_table().to_pandas(),
        mem.runs_table().to_pandas(),
        check_categorical=False,
    )


def test_export_writes_the_runs_csv_of_before(run, env, tmp_path):
    out, mem = run
    write_csv(tmp_path / "before.csv", mem.runs)  # how runs.csv was written before Parquet
    p = _jaxlab(env, tmp_path, "export", str(out), "--runs-csv", str(tmp_path / "r.csv"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "before.csv").read_bytes()
    assert p.stdout.strip() == str(tmp_path / "r.csv")


def test_old_run_directory_with_runs_csv(tmp_path, env):
    res = load_run(DATA / "run-v1-quadratic")
    assert res.runs["run"].dtype == np.int64 and res.runs["success"].dtype == bool
    assert res.runs_table(["x1_final"]).num_rows == res.config.total_runs
    p = _jaxlab(env, tmp_path, "export", str(DATA / "run-v1-quadratic"), "--runs-csv", "old.csv")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "old.csv").read_bytes() == (
        DATA / "run-v1-quadratic" / "runs.csv"
    ).read_bytes()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["export", "nowhere", "--runs-csv"], "nowhere is not a finished jaxlab run directory"),
        (["export", str(DATA / "run-v1-lab"), "--runs-csv", "x.csv"], "no per-run records"),
        (["export", str(DATA / "run-v1-quadratic")], "say what to export: --runs-csv"),
    ],
)
def test_export_bad_input_is_one_line(tmp_path, monkeypatch, capsys, argv, says):
    """In this process (the export's own subprocess test is above): one line, exit 2, nothing
    written."""
    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert says in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_without_pyarrow_keep_runs_is_one_line(env, tmp_path):
    """pyarrow absent (an import of it fails): --keep-runs says how to install it, before a file
    is written; the records in memory and an old runs.csv need no pyarrow."""
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"  # `import pyarrow` now raises ImportError
        "from jaxlab.cli import main\n"
        f"rc = main(['sweep', *{CLI!r}, '--keep-runs', '--out', 'run', '--quiet'])\n"
        "import jaxlab\n"
        "old = jaxlab.load_run(sys.argv[1] if len(sys.argv) > 1 else "
        f"{str(DATA / 'run-v1-quadratic')!r})\n"
        "assert len(old.runs['final_loss']) == old.config.total_runs\n"
        "sys.exit(rc)\n"
    )
    p = _jaxlab(env, tmp_path, code=code)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "keep_runs" in p.stderr and "pip install 'jaxlab[parquet]'" in p.stderr
    assert not (tmp_path / "run").exists()
