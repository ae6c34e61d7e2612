"""Refined sweeps (--refine): the split rule on hand-made trees, leaves that tile the plane,
the same bits for any chunking, device count or resume (Ctrl-C and SIGKILL mid-refinement),
one compile for every round, cells.csv checked on load, bad values refused in one line."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from jaxlab import engine, refine
from jaxlab.cli import _summary, main
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.results import load_run
from jaxlab.sweep import run_sweep

GRID = dict(lr=[0.5, 1.0, 2.0, 4.0], scale=[0.5, 1.0, 2.0, 4.0])


def _cfg(**kw):
    base = dict(n_runs=16, max_steps=30, refine=16, levels=(0.2,), lanes="dense")
    base.update(kw)
    return SweepConfig(**base).with_settings(**GRID)


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# --- geometry and the split rule, on small hand-made trees --------------------------------
def _geo(nx=3, ny=2, refine_to=12):
    cfg = SweepConfig(n_runs=10, refine=refine_to).with_settings(
        lr=list(np.linspace(0.1, 0.3, nx)), scale=list(np.geomspace(0.1, 0.4, ny))
    )
    return refine.geometry(cfg)


def test_geometry_ids_bounds_and_depth():
    geo = _geo()
    assert geo.spacing == ("lin", "log") and geo.n == (3, 2)
    assert geo.depth == 2 and geo.finest == (12, 8)  # 3 * 2**2 >= 12
    assert _geo(refine_to=13).depth == 3
    nodes = np.arange(geo.n_nodes)
    assert geo.n_nodes == 6 * (1 + 4 + 16)
    np.testing.assert_array_equal(refine.encode(geo, *refine.decode(geo, nodes)), nodes)
    b = refine.bounds(geo, [0, 1, 6])
    # base cells: halfway between the centres (lin: 0.05 .. 0.15; log: 0.05 .. sqrt(0.1 * 0.4))
    np.testing.assert_allclose(b["lr_lo"][:2], 0.05)
    np.testing.assert_allclose(b["lr_hi"][:2], 0.15)
    np.testing.assert_array_equal(b["scale"][:2], [0.1, 0.4])
    np.testing.assert_allclose([b["scale_lo"][0], b["scale_hi"][0]], [0.05, math.sqrt(0.04)])
    # node 6: level 1, (0, 0): the lower left quarter of cell 0, centred in each spacing
    assert b["level"][2] == 1
    np.testing.assert_allclose([b["lr_lo"][2], b["lr"][2], b["lr_hi"][2]], [0.05, 0.075, 0.1])
    lo, hi = b["scale_lo"][2], b["scale_hi"][2]
    np.testing.assert_allclose([lo, b["scale"][2], hi], [0.05, math.sqrt(0.005), 0.1])
    np.testing.assert_array_equal(refine.children(geo, [0]), [6, 7, 10, 11])


def _split(geo, k, n, level=0, nodes=None, levels=(0.5,)):
    nodes = np.arange(len(k)) if nodes is None else np.asarray(nodes)
    return refine.split(geo, nodes, np.asarray(k), np.asarray(n), levels, level).tolist()


def test_split_rule_a_an_interval_straddles_a_level():
    geo = _geo()
    # 3 x 2 (x major): only the middle-left cell straddles 0.5; its neighbours agree (all 0
    # or 5 of 10: the intervals are not disjoint from a straddling one)
    k = [0, 0, 5, 0, 0, 0]
    assert _split(geo, k, [10] * 6) == [False, False, True, False, False, False]
    assert _split(geo, k, [10] * 6, levels=(0.9,)) == [False] * 6


def test_split_rule_b_neighbours_across_a_level_with_disjoint_intervals():
    geo = _geo()
    k = [0, 0, 0, 0, 40, 40]  # x = 0, 1: never; x = 2: always (40 of 40)
    assert _split(geo, k, [40] * 6) == [False, False, True, True, True, True]
    # at 4 of 40 against 36 of 40 the intervals still are disjoint; at 15 vs 25 they are not
    assert _split(geo, [0, 0, 4, 4, 36, 36], [40] * 6) == [False, False, True, True, True, True]
    near = _split(geo, [0, 0, 15, 15, 25, 25], [40] * 6, levels=(0.1,))
    assert near == [True, True, True, True, False, False]  # 0 vs 15: across 0.1, disjoint
    # diagonal neighbours are not neighbours
    geo2 = _geo(2, 2, 8)
    assert _split(geo2, [0, 40, 40, 0], [40] * 4) == [True] * 4
    assert _split(geo2, [0, 0, 0, 40], [40] * 4) == [False, True, True, True]


def test_split_rule_one_restart_uses_the_class():
    geo = _geo()
    # every interval straddles 0.5 at n = 1: the class alone decides
    assert _split(geo, [0, 0, 0, 0, 1, 1], [1] * 6) == [False, False, True, True, True, True]
    assert _split(geo, [1] * 6, [1] * 6) == [False] * 6


def test_split_rule_mixed_sizes_only_the_last_level_splits_and_not_below_the_depth():
    geo = _geo()
    # cell 4 (x = 2, y = 0) was split; its children 22, 23, 26, 27 (level 1, x = 4, 5)
    kids = refine.children(geo, [4]).tolist()
    assert kids == [22, 23, 26, 27]
    nodes = [0, 1, 2, 3, 4, 5, *kids]
    # the children at x = 4 (next to cell 2, on its side) fail, those at x = 5 succeed
    k = [0, 0, 0, 0, 20, 40, 0, 0, 40, 40]
    got = _split(geo, k, [40] * 10, level=1, nodes=nodes)
    # only leaves of level 1 split: 22 and 23 (against 26, and 23 against cell 5 above it), 26
    # and 27 (against 22, 23); cell 5 (level 0) across from 23 never splits now
    assert got == [False] * 6 + [True] * 4
    assert refine.leaf_flags(geo, nodes).tolist() == [True] * 4 + [False] + [True] * 5
    assert _split(geo, k, [40] * 10, level=2, nodes=nodes) == [False] * 10  # the finest depth


def test_key_and_settings_of_a_refined_cell_follow_its_node():
    cfg = _cfg()
    plan = engine.make_plan(cfg, 1)
    nodes = np.array([0, 3, 40, 41])
    plan = dataclasses.replace(plan, nodes=nodes)
    g = np.array([0, 17, 2 * 16 + 5, 3 * 16 + 15])  # slot 0 i 0, slot 1 i 1, slot 2 i 5, ...
    np.testing.assert_array_equal(
        engine.key_index(cfg, g, nodes), [0, 3 * 16 + 1, 40 * 16 + 5, 41 * 16 + 15]
    )
    paired = dataclasses.replace(cfg, keys="paired")
    np.testing.assert_array_equal(engine.key_index(paired, g, nodes), [0, 1, 5, 15])
    hp = plan.hparams(g)
    x, y = refine.centres(refine.geometry(cfg), nodes)
    np.testing.assert_array_equal(hp["lr"], x.astype(cfg.dtype))
    np.testing.assert_array_equal(hp["scale"], y.astype(cfg.dtype))
    assert hp["lr"][0] == 0.5 and hp["scale"][1] == 4.0  # base cells: the values given


# --- sweeps ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    before = engine.COMPILE_STATS["compiles"]
    res = run_sweep(_cfg(chunk_size=48), None, n_devices=2, progress=False)
    return res, engine.COMPILE_STATS["compiles"] - before


def test_rounds_refine_the_boundary_with_one_compile(reference):
    res, compiles = reference
    rf, c = res.meta["refine"], res.cells
    assert compiles == 1  # every round's chunks run the one program (dense lanes, 128 of them)
    assert rf["rounds"] == 3 and rf["depth"] == 2 and rf["finest"] == [16, 16]
    per = rf["cells_per_level"]
    assert per[0] == 16 and 0 < per[1] < 64 and per[2] > 0 and per[1] % 4 == per[2] % 4 == 0
    assert rf["restarts"] == int(c["n_runs"].sum()) == 16 * sum(per)
    assert rf["uniform_restarts"] == 16 * 16 * 16
    assert (c["n_runs"] == 16).all()


def test_leaves_tile_the_plane_and_every_split_has_its_children(reference):
    res = reference[0]
    c, geo = res.cells, refine.geometry(res.config)
    leaf = c["leaf"] == 1
    lx = np.log(c["lr_hi"]) - np.log(c["lr_lo"])
    ly = np.log(c["scale_hi"]) - np.log(c["scale_lo"])
    domain = 4 * np.log(2) * 4 * np.log(2)  # half a step beyond the outer centres
    np.testing.assert_allclose((lx * ly)[leaf].sum(), domain, rtol=1e-12)
    # no overlap: each finest pixel is covered by exactly one leaf
    lv, ix, iy = refine.decode(geo, c["node"])
    cover = np.zeros(geo.finest, np.int64)
    for m, i, j in zip(lv[leaf], ix[leaf], iy[leaf]):
        s = 1 << (geo.depth - m)
        cover[i * s : (i + 1) * s, j * s : (j + 1) * s] += 1
    assert (cover == 1).all()
    parents = c["node"][~leaf]
    assert np.isin(refine.children(geo, parents), c["node"]).all()
    # The tree is the split rule's, round by round: the cells split at level m are those
    # refine.split picks from the cells evaluated by then (levels <= m) and their counts.
    nodes = np.asarray(c["node"])
    for m in range(geo.depth):
        upto = lv <= m
        pick = refine.split(geo, nodes[upto], c["n_success"][upto], c["n_runs"][upto],
                            res.config.levels, m)  # fmt: skip
        split_then = np.zeros(upto.sum(), bool)
        split_then[~leaf[upto] & (lv[upto] == m)] = True
        np.testing.assert_array_equal(pick, split_then, err_msg=f"level {m}")
        assert pick.any()
    assert not np.isnan(res.finest()["values"]).any()


def test_paired_keys_are_the_uniform_sweeps_restarts_and_progress_shows_rounds(reference, capsys):
    """With paired keys restart i of a refined cell is restart i of a uniform paired sweep at
    that cell's centre (here: a point list of the finest leaves' centres, the same compiled
    program); the progress lines name each round, its open cells and the restarts used."""
    before = engine.COMPILE_STATS["compiles"]
    res = run_sweep(_cfg(chunk_size=48, keys="paired"), None, n_devices=2, progress=True)
    err = capsys.readouterr().err
    c = res.cells
    assert "round 0: 16 open cells, 0 restarts used before it\n" in err
    per = res.meta["refine"]["cells_per_level"]
    assert f"round 1: {per[1]} open cells, 256 restarts used before it\n" in err
    assert f"round 2: {per[2]} open cells, {16 * (16 + per[1])} restarts used before it\n" in err
    deep = np.flatnonzero(c["level"] == 2)[:24]
    pts = {"lr": c["lr"][deep].tolist(), "scale": c["scale"][deep].tolist()}
    uni = SweepConfig(n_runs=16, max_steps=30, keys="paired", lanes="dense", points=pts)
    u = run_sweep(dataclasses.replace(uni, chunk_size=48), None, n_devices=2, progress=False)
    assert engine.COMPILE_STATS["compiles"] == before  # every sweep here ran the one program
    for k in ("n_success", "n_converged", "n_stalled", "n_diverged", "n_max_steps"):
        np.testing.assert_array_equal(u.cells[k], c[k][deep], err_msg=k)
    assert u.cells["n_success"].sum() > 0


def test_same_bits_across_chunks_devices_and_ctrl_c_mid_refinement(
    reference, tmp_path, stop_and_resume
):
    ref = reference[0].cells
    out = tmp_path / "run"
    cfg = _cfg(chunk_size=16)  # on 8 devices: other chunks, other devices, same bits

    def refused(stops):
        if stops == 1:  # a resume with another refine is refused like other changes
            with pytest.raises(ConfigError, match="the config given differs"):
                run_sweep(_cfg(chunk_size=16, refine=32), out, resume=True, progress=False)

    res, stops = stop_and_resume(cfg, out, 12, refused)  # every 12 chunks: inside rounds
    assert stops >= 3
    _same(ref, res.cells)
    _same(ref, load_run(out).cells)  # cells.csv checked: nodes, bounds, levels, leaves


ARGS = [
    "--lr", "0.5,1,2,4", "--scale", "0.5,1,2,4", "--n-runs", "16", "--max-steps", "30",
    "--refine", "16", "--levels", "0.2", "--chunk-size", "16", "--devices", "2", "--lanes", "dense",
]  # fmt: skip


def test_cli_sigkill_mid_refinement_then_resume(reference, tmp_path, env):
    """Killed by fault injection in the middle of a write inside round 1 (writes: config.toml,
    the 16 chunk-log records of round 0, checkpoints, then round 1's 24 chunks from about the
    20th), resumed: cells.csv as the reference's; redrawn by `jaxlab plot`, reported by `jaxlab
    report`; a damaged bound is named."""
    out = tmp_path / "run"
    args = [*ARGS, "--quiet", "--no-figures", "--out", str(out)]
    e = dict(env, JAXLAB_FAULT_KILL_AT_WRITE="30")
    p = subprocess.run([sys.executable, "-m", "jaxlab", "sweep", *args], env=e, timeout=300)
    assert p.returncode == -9
    assert not (out / "cells.csv").exists()
    assert int(np.load(out / "state.npz")["round"]) >= 1
    done = run_sweep(None, out, resume=True, n_devices=2, progress=False, figures=False)
    assert done.meta["timings"]["resumed_chunks"] > 0
    assert "  refined: 3 rounds, cells per level [16, " in _summary(done, 1.0)
    res = load_run(out)
    _same(reference[0].cells, res.cells)
    header = (out / "cells.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == [
        "node", "lr", "scale", "lr_lo", "lr_hi", "scale_lo", "scale_hi", "level", "leaf", "n_runs",
    ]  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    assert meta["refine"]["cells"] == len(res.cells["node"])
    assert main(["plot", str(out)]) == 0 and (out / "success_rate.png").stat().st_size > 0
    assert not list(out.rglob(".tmp-*"))
    ds = res.to_xarray()  # one `cell` dimension, the bounds as coordinates
    assert ds.sizes["cell"] == len(res.cells["node"]) and ds.attrs["design"] == "refined"
    np.testing.assert_array_equal(ds["lr_lo"].values, res.cells["lr_lo"])
    np.testing.assert_array_equal(ds["n_success"].values, res.cells["n_success"])
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()  # two maps of quads, one a leaf
    assert html.count('"name":"GlyphRenderer"') == 2 and html.count("level @level") == 2
    # a bound changed in cells.csv (and meta.json's checksum dropped): named on load
    text = (out / "cells.csv").read_text().replace(",0.3535533905932738,", ",0.36,", 1)
    (out / "cells.csv").write_text(text)
    meta.pop("checksums"), meta.pop("meta_sha256")
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"cells\.csv.*row 1, column lr_lo: '0\.36'"):
        load_run(out)


POINTS = "lr,scale\n0.5,1\n1,2\n"
BAD = [
    (["--lr", "0.5,1", "--scale", "1"], "refine: expected exactly two swept traced axes"),
    (["--levels", "0"], "levels: expected success levels in (0, 1), got '0'"),
    (["--levels", "1"], "levels: expected success levels in (0, 1), got '1'"),
    (["--levels", "-0.1"], "levels: expected success levels in (0, 1), got '-0.1'"),
    (["--levels", "0.5,junk"], "levels: expected success levels in (0, 1), got 'junk'"),
    (["--refine", "3"], "refine: expected at least the base grid's 4 cells per axis, got 3"),
    (["--lr", "0.5,1,3"], "refine: axis lr must be evenly spaced in value or in log"),
    (["--optimizer", "gd,adam"], "refine: refinement maps two traced axes; optimizer is a static"),
    (["--ci-width", "0.1"], "refine: refinement and adaptive restarts (ci_width) are not"),
    (["--points", "POINTS"], "refine: refinement splits the cells of a grid, not points"),
    (["--refine", "0", "--levels", "0.3"], "levels: the success levels of refined sweeps: give"),
    (["--refine", "2048"], "refine: the finest grid 2,048 x 2,048 is too fine: its tree has"),
    # 2**37 cells a side: the tree's size in int64 would wrap negative and pass the checks
    (["--refine", str(2**39)], "refine: the finest grid 549,755,813,888 x 549,755,813,888 is too"),
    (["--refine", "512", "--n-runs", "20000"], "refine: 349,520 possible cells x 20,000 restarts"),
]


def test_refine_at_the_grids_own_size_is_the_grid():
    """``refine`` = the grid's size: depth 0, nothing to split; its raster is the grid (the
    last edge is no cell's: it once indexed past the given values)."""
    cfg = _cfg(refine=4).validate()
    geo = refine.geometry(cfg)
    assert geo.depth == 0 and geo.n_nodes == 16
    nodes = np.arange(16)
    cells = {**refine.cell_columns(cfg, nodes), "success_rate": np.linspace(0, 1, 16)}
    r = refine.raster(cfg, cells)
    np.testing.assert_array_equal(r["values"], np.linspace(0, 1, 16).reshape(4, 4))
    np.testing.assert_array_equal(r["x"], [0.5, 1, 2, 4])
    assert len(r["x_edges"]) == 5 and r["x_edges"][-1] == pytest.approx(4 * 2**0.5)


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_values_one_line_exit_2_nothing_written(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    if "POINTS" in extra:
        (tmp_path / "p.csv").write_text(POINTS)
        extra = ["--points", str(tmp_path / "p.csv"), "--refine", "16"]
    else:
        extra = ["--lr", "0.5,1,2,4", "--scale", "0.5,1,2,4", "--refine", "16", *extra]
        if extra.count("--refine") == 2:
            extra = extra[:4] + extra[6:]
    assert main(["sweep", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_bad_refine_from_the_cli_process(tmp_path, env):
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "jaxlab", "sweep", "--refine", "64", "--lr", "1", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr == (
        "jaxlab: error: refine: expected exactly two swept traced axes to refine, got "
        "scale (9 values)\n"
    )
    assert not out.exists()
