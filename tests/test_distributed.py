"""Several processes, one sweep: JAX's distributed runtime on localhost (CPU, gloo collectives).
The combined result must be bit-identical to a one-process run."""

import json
import os
import socket
import subprocess
import sys

from jaxlab.config import from_toml
from jaxlab.sweep import run_sweep

ARGS = [
    "--n-runs", "100", "--lr", "0.3:3:3:log", "--scale", "0.5,2", "--max-steps", "30",
    "--chunk-size", "64", "--no-figures", "--quiet", "--devices", "1",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    out = tmp_path / "run"
    port = _free_port()
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    args = ARGS
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jaxlab",
                "sweep",
                "--out",
                str(out),
                *args,
                "--processes",
                "2",
                "--process-id",
                str(i),
                "--coordinator",
                f"127.0.0.1:{port}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    # Each process checkpointed its own share; process 0 wrote the outputs.
    assert (out / "state-p0.npz").is_file() and (out / "state-p1.npz").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["devices"]["processes"] == 2
    single = run_sweep(
        from_toml((out / "config.toml").read_text()),
        tmp_path / "one",
        figures=False,
        progress=False,
    )
    assert (out / "cells.csv").read_bytes() == (single.run_dir / "cells.csv").read_bytes()


def test_process_flags_go_together(capsys):
    from jaxlab.cli import main

    assert main(["sweep", "--processes", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "processes" in err[0] and "coordinator" in err[0]
