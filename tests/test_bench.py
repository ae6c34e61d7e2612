"""``jaxlab bench``: the quick run writes its record and figure; the numpy peer runs beside it;
bad options are one-line ConfigErrors (exit 2 from the CLI)."""

import json

import jax
import pytest

from jaxlab import bench, cli
from jaxlab.errors import ConfigError


@pytest.fixture(autouse=True)
def _backend_up():
    """Initialise JAX first, so bench.main finds conftest's devices and leaves them alone."""
    jax.devices()


def _load(out):
    doc = json.loads((out / "bench.json").read_text())
    return doc, [m for m in doc["measurements"] if m["impl"] == "jaxlab"]


def test_bench_config_spreads_R_over_the_lr_range():
    cfg, r_run, k = bench.bench_config(10_000, "manual", "float32", seed=3)
    lr = cfg.setting("lr").values
    assert (r_run, k, cfg.n_runs, cfg.seed) == (10_000, 1000, 10, 3)
    assert len(lr) == 1000 and lr[0] == pytest.approx(0.1) and lr[-1] == pytest.approx(3.0)
    assert cfg.setting("max_steps").values == (100,) and cfg.setting("scale").values == (1.0,)


def test_quick_run_writes_json_and_png(tmp_path):
    out = tmp_path / "b"
    argv = ["--quick", "--out", str(out), "--methods", "autodiff", "--dtypes", "float32"]
    assert bench.main(argv) == 0
    doc, jl = _load(out)
    assert doc["argv"] == argv and doc["machine"]["devices_used"] == len(jax.devices())
    assert {(m["variant"], m["R"]) for m in jl} == {
        (v, r) for v in ("engine", "end-to-end") for r in (1000, 10_000)
    }
    for m in jl:
        assert m["restart_steps_per_s"] > 0 and m["R_run"] == m["R"]
        assert 0.05 < m["success_rate"] < 0.35 and 50 < m["mean_steps"] <= 100
    assert all(m["same_counts_as_engine"] for m in jl if m["variant"] == "end-to-end")
    assert any(c["check"] == "end-to-end / engine" for c in doc["checks"])
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dtypes_timed_side_by_side_and_repeats_at_every_R(tmp_path, monkeypatch):
    """Each round times float32 then float64 (reversed in the next round), so the float64 /
    float32 check compares neighbouring runs; an explicit --repeats holds above BIG_R too."""
    monkeypatch.setattr(bench, "BIG_R", 500)  # R = 1000 counts as big: one round by default
    order = []
    real = bench._timed_runs

    def spy(R, method, dtype, *args):
        engine, end_to_end, base = real(R, method, dtype, *args)
        return (lambda: order.append(dtype) or engine()), end_to_end, base

    monkeypatch.setattr(bench, "_timed_runs", spy)
    argv = ["--R", "1000", "--methods", "autodiff", "--dtypes", "float32", "float64"]
    assert bench.main([*argv, "--out", str(tmp_path / "a")]) == 0
    _, jl = _load(tmp_path / "a")
    assert [len(m["times_s"]) for m in jl] == [1] * 4 and order == ["float32", "float64"]
    order.clear()
    assert bench.main([*argv, "--repeats", "3", "--out", str(tmp_path / "b")]) == 0
    doc, jl = _load(tmp_path / "b")
    assert [len(m["times_s"]) for m in jl] == [3] * 4
    assert order == ["float32", "float64", "float64", "float32", "float32", "float64"]
    assert [m["dtype"] for m in jl] == ["float32"] * 2 + ["float64"] * 2  # table order kept
    (f64,) = [c for c in doc["checks"] if c["check"] == "float64 / float32"]
    eng = {m["dtype"]: m["times_s"] for m in jl if m["variant"] == "engine"}
    assert f64["rounds"] == pytest.approx([a / b for a, b in zip(eng["float32"], eng["float64"])])


def test_numpy_peer_in_the_same_run(tmp_path):
    peers = bench.find_peers_dir(None)
    if peers is None:
        pytest.skip("no shared/bench peer scripts beside the repository")
    out = tmp_path / "p"
    argv = ["--R", "1000", "--repeats", "1", "--methods", "autodiff", "--dtypes", "float32"]
    assert bench.main([*argv, "--peers", "numpy", "--out", str(out)]) == 0
    doc, _ = _load(out)
    peer = [m for m in doc["measurements"] if m["impl"] == "numpy_batched"]
    assert len(peer) == 1 and peer[0]["R"] == 1000 and peer[0]["restart_steps_per_s"] > 0
    assert peer[0]["jaxlab_over_peer"] > 0
    assert {r["jaxlab"] for r in doc["ratios"]} == {"engine autodiff", "end-to-end autodiff"}
    assert any(c["check"].startswith("success rate vs numpy") for c in doc["checks"])


@pytest.mark.parametrize(
    "argv, param",
    [
        (["--R", "0"], "R"),
        (["--R", "ten"], "bench"),
        (["--repeats", "0"], "repeats"),
        (["--methods", "autodif"], "methods"),
        (["--dtypes", "float16"], "dtypes"),
        (["--devices", "0"], "devices"),
        (["--peers", "matlab"], "peers"),
        (["--peers", "--peers-dir", "/nonexistent"], "peers-dir"),
        (["--torch-python", "/nonexistent/python", "--peers", "torch"], "torch-python"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, argv, param):
    if param == "torch-python":  # a peers folder that exists, so the python is what is wrong
        peers = tmp_path / "peers"
        peers.mkdir()
        for name in ("common.py", "numpy_batched.py", "seed_loop.py", "torch_vmap.py"):
            (peers / name).write_text("")
        argv = [*argv, "--peers-dir", str(peers)]
    with pytest.raises(ConfigError) as e:
        bench.main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.param == param and "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_cli_exit_2(tmp_path, capsys):
    assert cli.main(["bench", "--", "--R", "0", "--out", str(tmp_path / "x")]) == 2
    assert "R: expected integers" in capsys.readouterr().err
