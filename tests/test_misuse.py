"""Misuse at the boundary: every bad flag, config key or argument ends in one line that names
the parameter and what is allowed (CLI: exit 2, no traceback, nothing written); the config
parser is checked with hypothesis."""

import math
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jaxlab import LAB_DATA, init_params, make_optimizer, minimize, train
from jaxlab.checks import check_problem
from jaxlab.cli import main
from jaxlab.config import (
    SweepConfig,
    config_hash,
    from_dict,
    from_toml,
    parse_values,
    to_toml,
)
from jaxlab.errors import ConfigError
from jaxlab.rundir import RunLock, save_npz
from jaxlab.sweep import run_sweep

SWEEPABLE = tuple(SweepConfig().schema)  # the lab network's settings

# --- the CLI ---------------------------------------------------------------------------------
# (flags after `jaxlab sweep --out {out} --no-figures --quiet`, text the one line must contain)
# Placeholders: {out} a fresh path, {tmp} the test's directory, {file} a regular file, {run} a
# run directory (config.toml only), {badrun} one whose config.toml is broken, {oldrun} one whose
# checkpoint belongs to another sweep, {locked} a directory locked by a running sweep.
CLI_CASES = [
    (["--lr", "nan"], "lr"),
    (["--lr", "inf"], "lr"),
    (["--lr", "-1"], "lr"),
    (["--lr", "0"], "lr"),
    (["--lr", "1e400"], "lr"),
    (["--lr", "abc"], "lr"),
    (["--lr", ""], "lr"),
    (["--lr", "1,1"], "lr"),
    (["--lr", "10:1:5:log"], "lr"),
    (["--lr", "1:1:3"], "lr"),
    (["--lr", "1:10:0"], "lr"),
    (["--lr", "1:10:5:foo"], "lr"),
    (["--lr", "-1:10:5:log"], "lr"),
    (["--lr"], "--lr"),
    (["--scale", "0"], "scale"),
    (["--scale", "-0.5"], "scale"),
    (["--scale", "inf"], "scale"),
    (["--scale", "nan"], "scale"),
    (["--momentum", "1"], "momentum"),
    (["--n-runs", "0"], "n_runs"),
    (["--n-runs", "-5"], "n_runs"),
    (["--n-runs", "abc"], "--n-runs"),
    (["--seed", "-1"], "seed"),
    (["--seed", "1.5"], "--seed"),
    (["--n-run", "5"], "did you mean '--n-runs'"),
    (["--sed", "3"], "did you mean '--seed'"),
    (["--optimizer", "adamm"], "optimizer: unknown value 'adamm' (did you mean 'adam'?)"),
    (["--optimizer", "gd,"], "optimizer"),
    (["--problem", "objective", "--objective", "rosenbrok"], "did you mean 'rosenbrock'"),
    (["--problem", "netwrk"], "problem"),
    (["--dataset", "xorr"], "did you mean 'xor'"),
    (["--problem", "objective", "--x1", "inf"], "x1"),
    (["--problem", "objective", "--x1", "1:0:3"], "x1"),
    (["--widths", "3-2-1"], "widths"),
    (["--widths", "2-2-2"], "widths"),
    (["--widths", "2-x-1"], "widths"),
    (["--widths", "2-0-1"], "widths"),
    (["--max-steps", "0"], "max_steps"),
    (["--max-steps", "1.5"], "max_steps"),
    (["--max-steps", "20000000"], "max_steps"),
    (["--dtype", "float16"], "dtype"),
    (["--loss", "foo"], "loss"),
    (["--method", "foo"], "method"),
    (["--tol", "nan"], "tol"),
    (["--tol", "-1"], "tol"),
    (["--threshold", "inf"], "threshold"),
    (["--chunk-size", "-1"], "chunk_size"),
    (["--name", ""], "name"),
    (["--preset", "foo"], "preset"),
    (["--config", "{tmp}/missing.toml"], "config"),
    (["--lr", "0.1:10:100000:log", "--scale", "0.1:10:100:log"], "10,000,000 cells"),
    (["--n-runs", "4294967295", "--lr", "1,2"], "n_runs <= 238,609,294"),
    (["--keep-runs", "--n-runs", "200000"], "keep_runs"),
    (["--out", "/proc/jaxlab-misuse/x"], "out"),
    (["--out", "{file}/sub"], "out"),
    (["--out", "{file}"], "out"),
    (["--out", "{locked}"], "in use by another sweep (pid"),
    (["--devices", "0"], "devices"),
    (["--devices", "x"], "--devices"),
    (["--devices", "100000"], "devices"),
    (["--processes", "2"], "processes"),
    (["--coordinator", "localhost:1234"], "coordinator"),
    (["--processes", "2", "--process-id", "2", "--coordinator", "h:1"], "process-id"),
    (["--processes", "2", "--process-id", "0", "--coordinator", "nohost"], "coordinator"),
    (["--processes", "0", "--process-id", "0", "--coordinator", "h:1"], "processes"),
    (["--distributed"], "distributed"),
    (["--resume", "{run}", "--lr", "2"], "resume"),
    (["--resume", "{run}", "--out", "{out}"], "resume"),
    (["--resume", "{run}", "--config", "{file}"], "resume"),
    (["--resume", "{tmp}/nowhere"], "resume"),
    (["--resume", "{file}"], "resume"),
    (["--resume", "{tmp}"], "resume"),
    (["--resume", "{badrun}"], "resume"),
    (["--resume", "{oldrun}"], "resume"),
]


def _snapshot(root: Path) -> dict:
    """Every path under root; regular files with size and mtime (a lock taken and dropped may
    touch a directory's mtime, but no file may change)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.join(dirpath, d)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            s = os.stat(p)
            snap[p] = (s.st_size, s.st_mtime_ns)
    return snap


@pytest.fixture
def scene(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default runs/ directory would land here, and be seen
    (tmp_path / "afile").write_text("not a directory\n")
    cfg = SweepConfig(n_runs=2).with_settings(lr=1.0, scale=1.0, max_steps=3)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(to_toml(cfg))
    bad = tmp_path / "badrun"
    bad.mkdir()
    (bad / "config.toml").write_text("lrr = 1\n")
    old = tmp_path / "oldrun"
    old.mkdir()
    (old / "config.toml").write_text(to_toml(cfg))
    save_npz(old / "state.npz", version=1, config_hash="0" * 16, chunk_size=8, done=1)
    locked = tmp_path / "locked"
    locked.mkdir()
    lock = RunLock(locked).acquire()
    places = {
        "out": str(tmp_path / "out"),
        "tmp": str(tmp_path),
        "file": str(tmp_path / "afile"),
        "run": str(run),
        "badrun": str(bad),
        "oldrun": str(old),
        "locked": str(locked),
    }
    yield places
    lock.release()


def _cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    return rc, capsys.readouterr().err


def _one_line(text: str) -> str:
    assert "Traceback" not in text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    return text


@pytest.mark.parametrize(("flags", "says"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_input(scene, capsys, flags, says):
    flags = [f.format(**scene) for f in flags]
    argv = ["sweep", "--no-figures", "--quiet"]
    if "--out" not in flags and "--resume" not in flags:
        argv += ["--out", scene["out"]]
    root = Path(scene["tmp"])
    before = _snapshot(root)
    rc, err = _cli(argv + flags, capsys)
    assert rc == 2, err
    assert says in _one_line(err)
    assert _snapshot(root) == before
    assert not Path(scene["out"]).exists()


def test_lock_message_names_the_holder(scene, capsys):
    rc, err = _cli(["sweep", "--out", scene["locked"], "--quiet"], capsys)
    assert rc == 2
    assert f"pid {os.getpid()} on " in _one_line(err)


def test_unknown_command_is_one_line(capsys):
    rc, err = _cli(["swep"], capsys)
    assert rc == 2 and "sweep" in _one_line(err)


# --- config files: the same table through from_toml and `--config FILE` ----------------------
TOML_CASES = [
    ("lrr = 1", "lrr: unknown setting (did you mean 'lr'?)"),
    ("n_run = 5", "did you mean 'n_runs'"),
    ("optimizer = 'adamm'", "did you mean 'adam'"),
    ("problem = 'objective'\nobjective = 'rosenbrok'", "did you mean 'rosenbrock'"),
    ("n_runs = '5'", "n_runs"),
    ("n_runs = 1.5", "n_runs"),
    ("n_runs = 0", "n_runs"),
    ("n_runs = {a = 1}", "n_runs"),
    ("seed = -3", "seed"),
    ("lr = true", "lr"),
    ("lr = []", "lr"),
    ("lr = [1, 'a']", "lr"),
    ("lr = [[1]]", "lr"),
    ("lr = 'nan'", "lr"),
    ("lr = -0.5", "lr"),
    ("lr = {log = [0.1, 10]}", "lr"),
    ("lr = {geom = [0.1, 10, 3]}", "lr"),
    ("lr = {log = [-1, 10, 3]}", "lr"),
    ("lr = {lin = [10, 1, 3]}", "lr"),
    ("lr = {log = [0.1, 10, 3], lin = [1, 2, 3]}", "lr"),
    ("scale = {log = [1e-3, inf, 3]}", "scale"),
    ("scale = 0", "scale"),
    ("momentum = -0.1", "momentum"),
    ("x1 = 'inf'", "x1"),
    ("widths = [2, 2, 1.5]", "widths"),
    ("widths = []", "widths"),
    ("widths = [2, 0, 1]", "widths"),
    ("widths = [2, 99999, 1]", "widths"),
    ("widths = [[2, 2, 1], [3, 2, 1]]", "widths"),
    ("widths = [[2, 2, 1], [2, 2, 1]]", "widths"),
    ("optimizer = {log = [1, 2, 3]}", "optimizer"),
    ("objective = ['lab', 'lab']", "objective"),
    ("max_steps = [0, 10]", "max_steps"),
    ("dtype = 64", "dtype"),
    ("dataset = 3", "dataset"),
    ("keep_runs = 1", "keep_runs"),
    ("name = 3", "name"),
    ("tol = 'x'", "tol"),
    ("chunk_size = -1", "chunk_size"),
    ("x = = 1", "config: not valid TOML"),
    ("[sweep]\nlr = 1", "sweep: unknown setting"),
    ("lr = {log = [0.1, 10, 100000]}\nscale = {log = [0.1, 10, 100]}", "10,000,000 cells"),
]


@pytest.mark.parametrize(("text", "says"), TOML_CASES, ids=[c[0] for c in TOML_CASES])
def test_toml_bad_input(scene, capsys, text, says):
    with pytest.raises(ConfigError) as e:
        # widths that do not fit the data are found when the problem is checked (eval_shape)
        check_problem(from_toml(text))
    assert "\n" not in str(e.value) and says in str(e.value)
    path = Path(scene["tmp"]) / "bad.toml"
    path.write_text(text + "\n")
    before = _snapshot(Path(scene["tmp"]))
    rc, err = _cli(["sweep", "--config", str(path), "--out", scene["out"], "--quiet"], capsys)
    assert rc == 2 and says in _one_line(err)
    assert _snapshot(Path(scene["tmp"])) == before
    assert not Path(scene["out"]).exists()


# --- the Python API --------------------------------------------------------------------------
KEY = jax.random.key(0)
NAN, INF = math.nan, math.inf
API_CASES = [
    ("with_settings(lrr)", lambda: SweepConfig().with_settings(lrr=1), "did you mean 'lr'"),
    ("parse_values(foo)", lambda: parse_values("foo", 1), "foo"),
    ("parse_values(lr, nan)", lambda: parse_values("lr", NAN), "lr"),
    ("parse_values(scale, -1)", lambda: parse_values("scale", -1), "scale"),
    ("with_settings(lr=0)", lambda: SweepConfig().with_settings(lr=0), "lr"),
    ("with_settings(opt)", lambda: SweepConfig().with_settings(optimizer="adamm"), "adam"),
    ("from_dict(list)", lambda: from_dict([1, 2]), "config"),
    ("validate n_runs 0", lambda: SweepConfig(n_runs=0).validate(), "n_runs"),
    ("validate n_runs str", lambda: SweepConfig(n_runs="5").validate(), "n_runs"),
    ("validate seed -1", lambda: SweepConfig(seed=-1).validate(), "seed"),
    ("validate dtype", lambda: SweepConfig(dtype="float16").validate(), "dtype"),
    ("validate problem", lambda: SweepConfig(problem="netwrk").validate(), "network"),
    ("validate tol nan", lambda: SweepConfig(tol=NAN).validate(), "tol"),
    ("validate threshold -1", lambda: SweepConfig(threshold=-1).validate(), "threshold"),
    ("validate keep_runs", lambda: SweepConfig(keep_runs="yes").validate(), "keep_runs"),
    ("validate settings", lambda: SweepConfig(settings=("x",)).validate(), "settings"),
    ("validate no settings", lambda: SweepConfig(settings=()).validate(), "settings"),
    ("run_sweep(str)", lambda: run_sweep("lab", None), "cfg"),
    ("run_sweep resume no out", lambda: run_sweep(None, None, resume=True), "resume"),
    ("run_sweep n_devices 0", lambda: run_sweep(SweepConfig(), None, n_devices=0), "n_devices"),
    ("train lr nan", lambda: train(init_params(KEY), LAB_DATA, NAN), "learning_rate"),
    ("train lr -1", lambda: train(init_params(KEY), LAB_DATA, -1.0), "learning_rate"),
    ("train lr inf", lambda: train(init_params(KEY), LAB_DATA, INF), "learning_rate"),
    ("train lr 0", lambda: train(init_params(KEY), LAB_DATA, 0), "learning_rate"),
    ("train max_steps 0", lambda: train(init_params(KEY), max_steps=0), "max_steps"),
    ("train loss", lambda: train(init_params(KEY), loss="foo"), "loss"),
    ("train method", lambda: train(init_params(KEY), method="manul"), "did you mean 'manual'"),
    ("train tol nan", lambda: train(init_params(KEY), tol=NAN), "tol"),
    ("train widths", lambda: train(init_params(KEY, (3, 2, 1))), "widths"),
    ("make_optimizer name", lambda: make_optimizer("adamm"), "did you mean 'adam'"),
    ("make_optimizer lr 0", lambda: make_optimizer("gd", 0), "learning_rate"),
    ("make_optimizer lr str", lambda: make_optimizer("gd", "1"), "learning_rate"),
    ("make_optimizer momentum", lambda: make_optimizer("momentum", momentum=-1), "momentum"),
    ("minimize name", lambda: minimize("rosenbrok", [0.0, 0.0], 0.1), "did you mean"),
    ("minimize lr nan", lambda: minimize("lab", [0.0, 0.0], NAN), "learning_rate"),
    ("minimize max_steps", lambda: minimize("lab", [0.0, 0.0], 0.1, max_steps=-1), "max_steps"),
    ("init_params widths", lambda: init_params(KEY, (2, 2, 2)), "widths"),
    ("init_params widths 0", lambda: init_params(KEY, (2, 0, 1)), "widths"),
    ("init_params widths int", lambda: init_params(KEY, 3), "widths"),
]


@pytest.mark.parametrize(
    ("call", "says"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(call, says):
    with pytest.raises(ConfigError) as e:
        call()
    assert isinstance(e.value, ValueError)
    assert "\n" not in str(e.value) and says in str(e.value)


def test_run_sweep_bad_config_touches_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="n_runs"):
        run_sweep(SweepConfig(n_runs=0), out)
    assert not out.exists()


def test_run_sweep_resume_with_other_config(scene):
    other = SweepConfig(n_runs=3).with_settings(lr=1.0, scale=1.0, max_steps=3)
    before = _snapshot(Path(scene["tmp"]))
    with pytest.raises(ConfigError, match="resume: the config given differs"):
        run_sweep(other, scene["run"], resume=True)
    assert _snapshot(Path(scene["tmp"])) == before


# --- property-based: the config parser -------------------------------------------------------
FAST = settings(max_examples=60, deadline=None)
positive = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)


@FAST
@given(lrs=st.lists(positive, min_size=1, max_size=6, unique=True), seed=st.integers(0, 2**40))
def test_lr_list_round_trips(lrs, seed):
    cfg = SweepConfig(seed=seed).with_settings(lr=lrs)
    back = from_toml(to_toml(cfg))
    assert back == cfg and config_hash(back) == config_hash(cfg)
    assert back.setting("lr").values == tuple(lrs)


@FAST
@given(a=positive, b=positive, num=st.integers(1, 60), spacing=st.sampled_from(["lin", "log"]))
def test_ranges(a, b, num, spacing):
    start, stop = min(a, b), max(a, b)
    assume(num == 1 or start < stop)
    try:
        axis = parse_values("lr", {spacing: [start, stop, num]})
    except ConfigError as e:  # points too close for the float grid: refused, not collapsed
        assert "repeated values" in str(e)
        return
    v = np.array(axis.values)
    assert len(v) == num and axis.spacing == (spacing if num > 1 else "list")
    assert v[0] == start and (num == 1 or v[-1] == stop)
    assert np.all(np.diff(v) > 0)
    assert np.all(np.isfinite(v)) and np.all(v > 0)
    # Written out and read back, a range is the same range.
    cfg = SweepConfig().with_settings(lr=axis)
    assert from_toml(to_toml(cfg)) == cfg


@FAST
@given(
    a=finite,
    b=finite,
    num=st.integers(1, 40),
    spacing=st.sampled_from(["lin", "log", None]),
)
def test_cli_range_string_equals_toml_form(a, b, num, spacing):
    name = "x1" if spacing == "lin" else "lr"
    if name == "lr":
        a, b = abs(a) or 1.0, abs(b) or 2.0
    start, stop = min(a, b), max(a, b)
    text = f"{start!r}:{stop!r}:{num}" + (f":{spacing}" if spacing else "")
    toml = {spacing or "lin": [start, stop, num]}
    try:
        want = parse_values(name, toml)
    except ConfigError as e:
        with pytest.raises(ConfigError) as e2:
            parse_values(name, text)
        assert str(e2.value) == str(e)
        return
    assert parse_values(name, text) == want


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["lab", "xor", "adam", "gd", "0.1:10:5:log", "2-2-1", "1,2", "float64"])
)
junk_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["lin", "log", "x"]), inner, max_size=2)
    ),
    max_leaves=8,
)
keys = st.sampled_from(sorted(SWEEPABLE) + ["n_runs", "seed", "dtype", "problem", "tol"]) | st.text(
    max_size=8
)


@settings(max_examples=150, deadline=None)
@given(d=st.dictionaries(keys, junk_values, max_size=4))
def test_junk_parses_or_raises_config_error(d):
    try:
        cfg = from_dict(d)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert cfg.validate() is cfg
    assert from_toml(to_toml(cfg)) == cfg


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_junk_toml_text_raises_config_error_or_parses(text):
    try:
        cfg = from_toml(text)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(cfg, SweepConfig)
