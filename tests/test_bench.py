"""``jaxlab bench`` (:mod:`jaxlab.throughput`: jaxlab alone) and ``benchmarks/bench.py`` (the
harness that adds the peers of ``shared/bench``): the runs write their records (and the harness
its figure); the numpy peer runs beside jaxlab; bad options are one-line ConfigErrors (exit 2);
both commands work in a subprocess with default JAX settings."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxlab import cli
from jaxlab import throughput as tp
from jaxlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "benchmarks" / "bench.py"


def _load_harness(path=HARNESS, name="benchmarks_bench"):
    """A script of ``benchmarks/``, not a package module: load it from its file."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


harness = _load_harness()


@pytest.fixture(autouse=True)
def _backend_up():
    """Initialise JAX first, so main() finds conftest's devices and leaves them alone."""
    jax.devices()


def _load(out):
    doc = json.loads((out / "bench.json").read_text())
    return doc, [m for m in doc["measurements"] if m["impl"] == "jaxlab"]


def test_bench_config_spreads_R_over_the_lr_range():
    cfg, r_run, k = tp.bench_config(10_000, "manual", "float32", seed=3)
    lr = cfg.setting("lr").values
    assert (r_run, k, cfg.n_runs, cfg.seed) == (10_000, 1000, 10, 3)
    assert len(lr) == 1000 and lr[0] == pytest.approx(0.1) and lr[-1] == pytest.approx(3.0)
    assert cfg.setting("max_steps").values == (100,) and cfg.setting("scale").values == (1.0,)


def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "b"
    argv = ["--quick", "--out", str(out), "--methods", "autodiff", "--dtypes", "float32"]
    assert tp.main(argv) == 0
    doc, jl = _load(out)
    assert doc["argv"] == argv and doc["machine"]["devices_used"] == len(jax.devices())
    assert doc["command"].startswith("jaxlab bench --quick") and "ratios" not in doc
    assert {(m["variant"], m["R"]) for m in jl} == {
        (v, r) for v in ("engine", "end-to-end") for r in (1000, 10_000)
    }
    for m in jl:
        assert m["restart_steps_per_s"] > 0 and m["R_run"] == m["R"]
        assert 0.05 < m["success_rate"] < 0.35 and 50 < m["mean_steps"] <= 100
    assert all(m["same_counts_as_engine"] for m in jl if m["variant"] == "end-to-end")
    assert any(c["check"] == "end-to-end / engine" for c in doc["checks"])
    assert not (out / "throughput.png").exists()  # the figure is the harness's


def test_dtypes_timed_side_by_side_and_repeats_at_every_R(tmp_path, monkeypatch):
    """Each round times float32 then float64 (reversed in the next round), so the float64 /
    float32 check compares neighbouring runs; an explicit --repeats holds above BIG_R too. Run
    through the harness (no peers), which measures with jaxlab.throughput and draws the png."""
    monkeypatch.setattr(tp, "BIG_R", 500)  # R = 1000 counts as big: one round by default
    order = []
    real = tp._timed_runs

    def spy(R, method, dtype, *args):
        engine, end_to_end, base, last = real(R, method, dtype, *args)
        return (lambda: order.append(dtype) or engine()), end_to_end, base, last

    monkeypatch.setattr(tp, "_timed_runs", spy)
    argv = ["--R", "1000", "--methods", "autodiff", "--dtypes", "float32", "float64"]
    assert harness.main([*argv, "--out", str(tmp_path / "a")]) == 0
    _, jl = _load(tmp_path / "a")
    assert [len(m["times_s"]) for m in jl] == [1] * 4 and order == ["float32", "float64"]
    order.clear()
    assert harness.main([*argv, "--repeats", "3", "--out", str(tmp_path / "b")]) == 0
    doc, jl = _load(tmp_path / "b")
    assert doc["command"].startswith("python benchmarks/bench.py --R 1000")
    assert [len(m["times_s"]) for m in jl] == [3] * 4
    assert order == ["float32", "float64", "float64", "float32", "float32", "float64"]
    assert [m["dtype"] for m in jl] == ["float32"] * 2 + ["float64"] * 2  # table order kept
    (f64,) = [c for c in doc["checks"] if c["check"] == "float64 / float32"]
    eng = {m["dtype"]: m["times_s"] for m in jl if m["variant"] == "engine"}
    assert f64["rounds"] == pytest.approx([a / b for a, b in zip(eng["float32"], eng["float64"])])
    assert (tmp_path / "b" / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numpy_peer_in_the_same_run(tmp_path):
    peers = harness.find_peers_dir(None)
    if peers is None:
        pytest.skip("no shared/bench peer scripts beside the repository")
    out = tmp_path / "p"
    argv = ["--R", "1000", "--repeats", "1", "--methods", "autodiff", "--dtypes", "float32"]
    assert harness.main([*argv, "--peers", "numpy", "--out", str(out)]) == 0
    doc, _ = _load(out)
    peer = [m for m in doc["measurements"] if m["impl"] == "numpy_batched"]
    assert len(peer) == 1 and peer[0]["R"] == 1000 and peer[0]["restart_steps_per_s"] > 0
    assert peer[0]["jaxlab_over_peer"] > 0 and peer[0]["method"] == "manual"
    assert {r["jaxlab"] for r in doc["ratios"]} == {"engine autodiff", "end-to-end autodiff"}
    assert any(c["check"].startswith("success rate vs numpy") for c in doc["checks"])
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


_BAD_BOTH = [
    (["--R", "0"], "R"),
    (["--R", "ten"], "bench"),
    (["--repeats", "0"], "repeats"),
    (["--methods", "autodif"], "methods"),
    (["--dtypes", "float16"], "dtypes"),
    (["--devices", "0"], "devices"),
]


@pytest.mark.parametrize(
    "argv, param",
    [
        *_BAD_BOTH,
        (["--peers"], "peers"),
        (["--peers", "numpy"], "peers"),
        (["--peers-dir=/x"], "peers-dir"),
        (["--torch-python", "python3"], "torch-python"),
    ],
)
def test_jaxlab_bench_bad_options_are_config_errors(tmp_path, argv, param):
    """The peer options are refused with a pointer to the harness, before anything runs."""
    with pytest.raises(ConfigError) as e:
        tp.main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.param == param and "\n" not in str(e.value)
    if param.startswith(("peers", "torch")):
        assert "python benchmarks/bench.py --peers" in str(e.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, param",
    [
        *_BAD_BOTH,
        (["--peers", "matlab"], "peers"),
        (["--peers", "--peers-dir", "/nonexistent"], "peers-dir"),
        (["--torch-python", "/nonexistent/python", "--peers", "torch"], "torch-python"),
    ],
)
def test_harness_bad_options_are_config_errors(tmp_path, argv, param):
    if param == "torch-python":  # a peers folder that exists, so the python is what is wrong
        peers = tmp_path / "peers"
        peers.mkdir()
        for name in ("common.py", "numpy_batched.py", "seed_loop.py", "torch_vmap.py"):
            (peers / name).write_text("")
        argv = [*argv, "--peers-dir", str(peers)]
    with pytest.raises(ConfigError) as e:
        harness.main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.param == param and "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_cli_exit_2(tmp_path, capsys):
    assert cli.main(["bench", "--", "--R", "0", "--out", str(tmp_path / "x")]) == 2
    assert "R: expected integers" in capsys.readouterr().err
    assert cli.main(["bench", "--peers", "numpy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python benchmarks/bench.py --peers" in err


@pytest.mark.slow
def test_commands_in_a_subprocess_with_default_jax_settings(tmp_path, env):
    """The user's path: ``python -m jaxlab bench`` (x64 off until it turns it on, one CPU device
    per core) and the harness run as a script from the repository root."""
    e = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}

    def run(*args):
        return subprocess.run(
            [sys.executable, *args], cwd=REPO, env=e, capture_output=True, text=True, timeout=300
        )

    r = run("-m", "jaxlab", "bench", "--help")
    text = " ".join(r.stdout.split())  # argparse wraps the description
    assert r.returncode == 0 and "python benchmarks/bench.py --peers" in text
    assert "--peers" not in text.replace("python benchmarks/bench.py --peers", "")  # no such option
    r = run(str(HARNESS), "--help")
    assert r.returncode == 0 and "--peers" in r.stdout and "--torch-python" in r.stdout
    r = run("-m", "jaxlab", "bench", "--peers")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("jaxlab bench: error: peers:"), r.stderr
    out = tmp_path / "b"  # float64: the command turns x64 on itself; one program, to be quick
    argv = ["--R", "2000", "--repeats", "1", "--methods", "autodiff", "--dtypes", "float64"]
    r = run("-m", "jaxlab", "bench", *argv, "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc, jl = _load(out)
    assert doc["machine"]["x64"] and doc["machine"]["devices_used"] == (os.cpu_count() or 1)
    assert [(m["variant"], m["dtype"], m["R_run"]) for m in jl] == [
        ("engine", "float64", 2000), ("end-to-end", "float64", 2000)
    ]  # fmt: skip
    assert jl[1]["same_counts_as_engine"] and "wrote" in r.stdout


def test_bound_reads_one_step_of_the_engine_and_its_deltas_are_computed_once():
    """``benchmarks/bound.py`` counts the operations of one step of the compiled training loop:
    the lab's network does its 10 tanh and 5 exp, once each; each point's delta and the loss's
    tail are computed once (written as divisions: before, the delta was recomputed in every
    gradient kernel, 611 other operations a restart-step, and the value's tail again in the
    stopping rule's). The bound is the counts over the rates."""
    bound = _load_harness(REPO / "benchmarks" / "bound.py", "benchmarks_bound")
    progs = bound.engine_programs("autodiff", 4096)
    kernels, counts = bound.loop_ops(progs["engine"][0].as_text())
    assert counts["tanh"] == 10 and counts["exp"] == 5 and counts["log"] == 1, counts
    assert 30 <= kernels <= 60 and counts["other"] <= 360, (kernels, counts)
    rates = {"tanh": 1e9, "exp": 1e9, "log": 1e9, "divide": 1e10, "other": 1e11}
    assert bound.bound({"tanh": 10, "other": 100}, rates) == pytest.approx(1 / (1e-8 + 1e-9))
