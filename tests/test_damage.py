"""Damaged run directories: each file cut short, emptied, overwritten with junk or with a flipped
bit ends in one line naming the file and what to do (exit 2, no traceback, the damaged file and
every other file untouched) or in a correct recovery; and a resume of a finished sweep changes
nothing."""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxlab import rundir, validate
from jaxlab.cli import main
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.rundir import ChunkLog
from jaxlab.sweep import SweepInterrupted, load_run, run_sweep

REPO = Path(__file__).resolve().parents[1]
CFG = SweepConfig(n_runs=20, chunk_size=16, keep_runs=True).with_settings(
    lr=[0.5, 2.0], scale=[0.5, 1.0, 2.0], max_steps=20
)  # 6 cells, 120 restarts, 8 chunks
QUIET = ["--devices", "1", "--no-figures", "--quiet"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``finished``: the whole sweep. ``interrupted``: a checkpoint after 2 chunks, then 3 more
    chunks in the log only, as a kill leaves it."""
    root = tmp_path_factory.mktemp("damage")
    run_sweep(CFG, root / "finished", n_devices=1, figures=False, progress=False)
    out = root / "interrupted"
    with pytest.raises(SweepInterrupted):
        run_sweep(CFG, out, n_devices=1, figures=False, progress=False, stop_after_chunks=2)
    append, appended = ChunkLog.append, []

    def killed_after_three(self, *args, **kwargs):
        append(self, *args, **kwargs)
        appended.append(1)
        if len(appended) == 3:
            raise KeyboardInterrupt  # out of the sweep with no checkpoint, like a SIGKILL

    ChunkLog.append = killed_after_three
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(None, out, resume=True, n_devices=1, figures=False, progress=False)
    finally:
        ChunkLog.append = append
    assert rundir.load_npz(out / "state.npz")["done"] == 2
    assert [t for t, _, _ in ChunkLog(out / "state.log").read()] == [2, 3, 4]
    return root


def _copy(prepared, tmp_path, which) -> Path:
    d = tmp_path / which
    shutil.copytree(prepared / which, d)
    return d


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _flip(data: bytes) -> bytes:
    """One bit flipped: in text, of the digit nearest the middle (it stays a digit, so the file
    still parses: the hardest case); in binary files, of the middle byte."""
    b = bytearray(data)
    digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
    text = not any(c == 0 or c > 127 for c in b)
    i = min(digits, key=lambda j: abs(j - len(b) // 2)) if text and digits else len(b) // 2
    b[i] ^= 0x01
    return bytes(b)


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "emptied": lambda data: b"",
    "junk": lambda data: random.Random(len(data)).randbytes(max(len(data), 64)),
    "flipped": _flip,
}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    bad = DAMAGES[how](data)
    if how == "flipped" and path.name == ".lock":  # in the pid (the host: see its own test)
        rec = json.loads(data)
        bad = data.replace(b"%d" % rec["pid"], b"%d" % (rec["pid"] ^ 1))
    if how == "flipped" and path.name == "meta.json":  # its timings vary: flip the config hash
        i = data.index(b'"config_hash": "') + 16
        bad = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    assert bad != data
    path.write_bytes(bad)


def _dead_lock(d: Path) -> None:
    """The lock file a killed sweep leaves (its process is gone)."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    rec = {"pid": dead.pid, "host": socket.gethostname(), "time": 1.7e9}
    (d / ".lock").write_text(json.dumps(rec))


def _one_line(text: str, name: str) -> str:
    assert "Traceback" not in text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert name in text, text
    return text


def _cli(argv, capsys):
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --- the files a finished run is read from: damage is an error, everywhere --------------------
READ = ["config.toml", "cells.csv", "meta.json", "boundaries.npz"]
PART = "runs/part-0000003.parquet"  # per-run records: one Parquet file per chunk


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("name", READ)
def test_damaged_finished_run_is_one_line(prepared, tmp_path, capsys, name, how):
    d = _copy(prepared, tmp_path, "finished")
    _damage(d / name, how)
    before = _files(d)
    with pytest.raises(ConfigError) as e:
        load_run(d)
    _one_line(str(e.value) + "\n", name)
    rc, out, err = _cli(["plot", str(d)], capsys)
    assert rc == 2 and out == ""
    _one_line(err, name)
    rc, out, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and out == ""
    _one_line(err, name)
    assert _files(d) == before  # the damaged file too: the error path writes nothing


@pytest.mark.parametrize("how", list(DAMAGES))
def test_damaged_part_is_one_line(prepared, tmp_path, capsys, how):
    """load_run glances at the parts (each there, with Parquet's footer), so a cut, emptied or
    overwritten part is an error at once; a flipped bit inside is one when the records are
    read (its sha256 in meta.json), and a resume of the finished sweep reads them all."""
    d = _copy(prepared, tmp_path, "finished")
    _damage(d / PART, how)
    before = _files(d)
    if how == "flipped":
        res = load_run(d)
        assert res.cells["n_runs"].tolist() == [20] * 6
        with pytest.raises(ConfigError) as e:
            res.runs["final_loss"]  # noqa: B018
        assert "does not match its sha256" in _one_line(str(e.value) + "\n", PART)
    else:
        with pytest.raises(ConfigError) as e:
            load_run(d)
        _one_line(str(e.value) + "\n", PART)
        rc, out, err = _cli(["plot", str(d)], capsys)
        assert rc == 2 and out == ""
        _one_line(err, PART)
    rc, out, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and out == ""
    assert "recomputes that chunk" in _one_line(err, PART)
    assert _files(d) == before


def test_the_advice_for_a_part_recomputes_that_chunk(prepared, tmp_path, capsys):
    d = _copy(prepared, tmp_path, "finished")
    _damage(d / PART, "flipped")
    rc, _, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and f"delete it and meta.json, then `jaxlab sweep --resume {d}`" in err
    (d / PART).unlink()
    (d / "meta.json").unlink()
    rc, _, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 0 and "runs/part-0000003.parquet: missing; recomputing that chunk" in err
    assert _files(d / "runs") == _files(prepared / "finished" / "runs")
    assert (d / "cells.csv").read_bytes() == (prepared / "finished" / "cells.csv").read_bytes()


@pytest.mark.parametrize("name", ["cells.csv", "meta.json"])
def test_the_advice_rebuilds_without_retraining(prepared, tmp_path, capsys, monkeypatch, name):
    d = _copy(prepared, tmp_path, "finished")
    _damage(d / name, "truncated")
    rc, _, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and ("rebuilds them" in err or "rewrites it" in err)
    for f in {name, "meta.json"}:  # what the line says to delete
        (d / f).unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("rebuilding from a complete checkpoint must not train")

    monkeypatch.setattr("jaxlab.sweep.compile_all", no_training)
    assert _cli(["sweep", "--resume", str(d), *QUIET], capsys)[0] == 0
    assert (d / "cells.csv").read_bytes() == (prepared / "finished" / "cells.csv").read_bytes()
    assert _files(d / "runs") == _files(prepared / "finished" / "runs")
    parts = {f"runs/part-{i:07d}.parquet" for i in range(8)}
    assert load_run(d).meta["checksums"].keys() == {
        "config.toml",
        "cells.csv",
        "boundaries.npz",
        *parts,
    }


# --- files a finished run is not read from: ignored, untouched --------------------------------
@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("name", ["state.npz", "success_rate.png"])
def test_finished_run_ignores_what_it_does_not_read(prepared, tmp_path, capsys, name, how):
    d = _copy(prepared, tmp_path, "finished")
    if name.endswith(".png"):
        (d / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)  # a figure
    _damage(d / name, how)
    before = _files(d)
    res = load_run(d)
    assert res.cells["n_runs"].tolist() == [20] * 6 and len(res.runs["run"]) == 120
    rc, out, err = _cli(["sweep", "--resume", str(d), "--devices", "1"], capsys)
    assert rc == 0 and err == "" and "sweep already finished (120 restarts)" in out
    assert _files(d) == before


# --- consistency checks: what parses but disagrees (no meta.json, so no checksums) ------------
def _edit_csv(path: Path, row: int, col: str, value: str) -> None:
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    fields = lines[row].split(",")
    fields[head.index(col)] = value
    lines[row] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


CONSISTENCY = [
    ("cells.csv", 3, "n_success", "21", "row 3: n_success > n_runs"),
    ("cells.csv", 2, "n_success", "1", "row 2: success_rate does not match"),
    ("cells.csv", 4, "n_max_steps", "14", "row 4: the status counts do not add up"),
    ("cells.csv", 1, "n_runs", "-20", "row 1: n_runs is negative"),
    ("cells.csv", 5, "lr", "2.5", "row 5, column lr: '2.5', the config's grid says '2.0'"),
    ("cells.csv", 6, "median_steps", "25.0", "row 6: the steps quantiles are out of order"),
]


@pytest.mark.parametrize(("name", "row", "col", "value", "says"), CONSISTENCY)
def test_inconsistent_tables_are_caught(prepared, tmp_path, name, row, col, value, says):
    d = _copy(prepared, tmp_path, "finished")
    (d / "meta.json").unlink()
    _edit_csv(d / name, row, col, value)
    with pytest.raises(ConfigError, match=f"{name}: .*{says}"):
        load_run(d)


PART_EDITS = [  # row 2 of part 3 (16 runs a part): run 50, in cell 2
    ("success", lambda v: ~v, "its n_success differs from cells.csv's"),
    ("status", lambda v: v + 7, "status is not in 0-3"),
    ("status", lambda v: (v + 1) % 4, "status_name does not match status"),
    ("run", lambda v: v - 2, "run indices not the chunk's"),
    ("steps", lambda v: v + 99, "steps not in [0, 20]"),
]


@pytest.mark.parametrize(("col", "edit", "says"), PART_EDITS)
def test_inconsistent_parts_are_caught(prepared, tmp_path, col, edit, says):
    """A part rewritten as a whole Parquet file (its pages' CRCs hold) with values that cannot
    be: caught when the records are read, without meta.json's checksums."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = _copy(prepared, tmp_path, "finished")
    (d / "meta.json").unlink()
    table = pq.read_table(d / PART)
    values = table.column(col).to_numpy().copy()
    values[2:3] = edit(values[2:3])
    table = table.set_column(table.schema.get_field_index(col), col, pa.array(values))
    pq.write_table(table, d / PART)
    res = load_run(d)
    where = "runs: cell 2" if col == "success" else PART  # the counts: over every part
    with pytest.raises(ConfigError, match=f"{where}: .*{re.escape(says)}") as e:
        res.runs.columns()
    _one_line(str(e.value) + "\n", where)


def test_checksum_catches_what_parses(prepared, tmp_path):
    d = _copy(prepared, tmp_path, "finished")
    loss = float(load_run(d).cells["p10_final_loss"][2])
    assert loss > 0
    _edit_csv(d / "cells.csv", 3, "p10_final_loss", repr(loss * 0.9999))
    with pytest.raises(ConfigError, match="cells.csv: does not match its sha256 in meta.json"):
        load_run(d)
    (d / "meta.json").unlink()  # without it, such a change is not detectable
    assert load_run(d).cells["p10_final_loss"][2] == loss * 0.9999


# --- an interrupted sweep: resume ends in an error, or recovers to the same bytes -------------
RESUME = [
    ("config.toml", "error"),
    ("state.npz", "error"),
    ("state.log", "recovered"),  # a record failing its CRC is dropped: those chunks rerun
    ("runs/part-0000001.parquet", "recovered"),  # a finished chunk's records: recomputed
    (".lock", "recovered"),  # the lock is flock; a damaged record is taken over
]


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize(("name", "outcome"), RESUME)
def test_damaged_interrupted_run_resumes_or_says_why(
    prepared, tmp_path, capsys, name, outcome, how
):
    d = _copy(prepared, tmp_path, "interrupted")
    if name == ".lock":
        _dead_lock(d)
    _damage(d / name, how)
    before = _files(d)
    rc, out, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    if outcome == "error":
        assert rc == 2 and out == ""
        _one_line(err, name)
        assert _files(d) == before
        return
    assert rc == 0, err
    if name.startswith("runs/"):
        assert "recomputing that chunk" in _one_line(err, f"{name}: ")
    else:
        assert err == ""
    for f in ("cells.csv", "config.toml"):
        assert (d / f).read_bytes() == (prepared / "finished" / f).read_bytes(), f
    assert _files(d / "runs") == _files(prepared / "finished" / "runs")  # every part, bytes
    assert not (d / ".lock").exists()


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda st: st["n_success"].__setitem__(1, 13), "cell 1: n_success > n_runs"),
        (lambda st: st["n_runs"].__setitem__(2, 1), "cell 2: n_runs does not match the 2 chunks"),
        (lambda st: st["loss_hist"].__setitem__((0, 5), 1), "cell 0: the loss histogram"),
        (lambda st: st.__setitem__("done", np.int64(9)), "done is not a chunk count in [0, 8]"),
    ],
)
def test_checkpoint_counts_must_match_its_chunks(prepared, tmp_path, capsys, edit, says):
    d = _copy(prepared, tmp_path, "interrupted")
    st = rundir.load_npz(d / "state.npz")
    edit(st)  # a whole .npz (its CRCs hold) with numbers that cannot be
    rundir.save_npz(d / "state.npz", **st)
    before = _files(d)
    rc, _, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and "state.npz: " in _one_line(err, says)
    assert _files(d) == before


def test_lock_naming_another_host_says_which_file(prepared, tmp_path, capsys):
    d = _copy(prepared, tmp_path, "interrupted")
    _dead_lock(d)
    rec = json.loads((d / ".lock").read_text())
    rec["host"] = rec["host"][:-1] + chr(ord(rec["host"][-1]) ^ 1)  # a flipped bit in the host
    (d / ".lock").write_text(json.dumps(rec))
    before = _files(d)
    rc, _, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 2 and f"delete {d / '.lock'}" in _one_line(err, ".lock")
    assert _files(d) == before


def test_log_header_is_in_its_checksum(tmp_path):
    log = ChunkLog(tmp_path / "state.log")
    rows = {"n_runs": np.array([16, 0]), "n_success": np.array([3, 0])}
    log.append(0, 0, **rows)
    log.append(1, 0, **rows)
    data = bytearray((tmp_path / "state.log").read_bytes())
    second = len(data) // 2
    assert data[second : second + 4] == b"JXLB"
    data[second + 12] ^= 0x01  # first_cell 0 -> 1: the counts would land in the wrong cells
    (tmp_path / "state.log").write_bytes(bytes(data))
    assert [t for t, _, _ in log.read()] == [0]


def test_every_bit_flip_of_a_part_is_caught(prepared, tmp_path):
    """A resume checks a finished chunk's part without meta.json's sha256 (an interrupted sweep
    has none): Parquet's footer, the CRC-32 of its pages, the schema, the values, and that the
    bytes are what the table read encodes to. A bit flipped anywhere is caught (a flip in a page
    header or in the footer's statistics passes the CRCs: the re-encoding catches it)."""
    import pyarrow.parquet as pq

    d = _copy(prepared, tmp_path, "finished")
    cfg = load_run(d).config
    path = d / "runs" / "part-0000002.parquet"
    good, task = path.read_bytes(), _task(2)
    want = pq.read_table(path)
    assert not validate.damaged_chunks(d, [task], cfg)  # the intact part passes
    assert pq.read_table(path).equals(want)
    for i in range(0, len(good), 3):  # a bit of every 3rd byte: each Parquet field is hit
        b = bytearray(good)
        b[i] ^= 1 << (i % 7)
        path.write_bytes(bytes(b))
        assert validate.damaged_chunks(d, [task], cfg), i


def test_bit_flips_of_meta_json_are_caught_or_harmless(prepared, tmp_path):
    d = _copy(prepared, tmp_path, "finished")
    path = d / "meta.json"
    good = path.read_bytes()
    want = json.loads(good)
    meta_only = validate.FILES[:1]  # the table's first entry: meta.json checks itself
    assert meta_only[0].name == "meta.json"
    caught = 0
    flips = range(0, len(good), 3)  # a bit of every third byte, a different bit each time
    for i in flips:
        b = bytearray(good)
        b[i] ^= 1 << (i % 8)
        path.write_bytes(bytes(b))
        try:
            assert validate.read_finished(d, meta_only)["meta.json"] == want, i
        except ConfigError as e:
            assert str(e).startswith(f"{path}: "), i
            caught += 1
    # The rest read back identical (a last digit that parses to the same float), checked above
    assert caught > 0.9 * len(flips)


def _task(i):
    from jaxlab.engine import ChunkTask

    return ChunkTask(i, 0, 16 * i, 16 * i + 16)


# --- resume of a finished sweep; flags that hold on resume ------------------------------------
def _stamps(d: Path) -> dict:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()}


def test_resume_of_finished_sweep_changes_nothing(prepared, tmp_path, capsys):
    d = _copy(prepared, tmp_path, "finished")
    before = _stamps(d)
    rc, out, err = _cli(["sweep", "--resume", str(d), "--devices", "1"], capsys)
    assert rc == 0 and err == ""
    assert out == (
        f"{d}: sweep already finished (120 restarts); nothing to do "
        f"(redraw its figures with: jaxlab plot {d})\n"
    )
    res = run_sweep(None, d, resume=True, progress=False)  # the API: the saved result
    assert res.cells["n_runs"].sum() == 120 and res.meta["checksums"]
    assert _stamps(d) == before
    assert not list(d.glob("*.png"))


def test_resume_keeps_no_figures_and_quiet(prepared, tmp_path, capsys):
    d = _copy(prepared, tmp_path, "interrupted")
    rc, out, err = _cli(["sweep", "--resume", str(d), *QUIET], capsys)
    assert rc == 0 and out == "" and err == ""
    assert not list(d.rglob("*.png"))
    assert (d / "cells.csv").read_bytes() == (prepared / "finished" / "cells.csv").read_bytes()


# --- the user's path: real processes, default JAX settings -----------------------------------
def _jaxlab(env, *argv):
    e = dict(env, PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "jaxlab", *argv]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_cli_plot_of_truncated_cells(prepared, tmp_path, env):
    d = _copy(prepared, tmp_path, "finished")
    _damage(d / "cells.csv", "truncated")
    before = _files(d)
    rc, out, err = _jaxlab(env, "plot", str(d))
    assert rc == 2 and out == ""
    line = _one_line(err, "cells.csv: truncated (row 3 of 6 has")
    assert f"jaxlab sweep --resume {d}" in line
    assert _files(d) == before


def test_cli_resume_of_junk_checkpoint(prepared, tmp_path, env):
    d = _copy(prepared, tmp_path, "interrupted")
    _damage(d / "state.npz", "junk")
    before = _files(d)
    rc, out, err = _jaxlab(env, "sweep", "--resume", str(d), *QUIET)
    assert rc == 2 and out == ""
    _one_line(err, "state.npz: not an .npz archive")
    assert _files(d) == before


def test_cli_resume_of_finished_sweep(prepared, tmp_path, env):
    d = _copy(prepared, tmp_path, "finished")
    before = _stamps(d)
    rc, out, err = _jaxlab(env, "sweep", "--resume", str(d))
    assert rc == 0 and err == "" and "sweep already finished (120 restarts)" in out
    assert _stamps(d) == before
