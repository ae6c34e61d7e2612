"""Datasets from files: good CSV and NPZ files load to the right arrays, every bad file is one
line naming the file and the problem, paths resolve against a base, and the digest follows the
file's bytes."""

import io
import os

import jax
import numpy as np
import pytest

import jaxlab
from jaxlab.datasets import (
    DATASETS,
    Dataset,
    dataset_digest,
    get_dataset,
    is_path,
    load_dataset,
)
from jaxlab.errors import ConfigError

X = np.array([[0.0, 0.5], [-1.0, 2.0], [3.0, -0.25]])
Y = np.array([1.0, 0.0, 1.0])


def assert_data(data, x=X, y=Y):
    assert isinstance(data, Dataset)
    assert data.x.dtype == np.float64 and data.y.dtype == np.float64
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        "0,0.5,1\n-1,2,0\n3,-0.25,1\n",
        "x1,x2,label\n0,0.5,1\n-1,2,0\n3,-0.25,1",
        "# moons, 3 points\n\nx1, x2, y\n0, 0.5, 1   # first\n\n  -1,2,0\r\n3,-.25,1.0\n\n",
        '\ufeff"x1","x2","y"\n"0","0.5","1"\n-1,2e0,0\n3,-2.5e-1,1\n',
    ],
    ids=["plain", "header", "comments-blanks-crlf", "bom-quotes"],
)
def test_good_csv(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text, encoding="utf-8")
    assert_data(load_dataset(p))


@pytest.mark.parametrize("names", [("x", "y"), ("X", "Y")])
def test_good_npz(tmp_path, names):
    p = tmp_path / "d.npz"
    p.write_bytes(npz_bytes(**{names[0]: X.astype(np.float32), names[1]: Y.astype(np.int64)}))
    assert_data(load_dataset(p), X.astype(np.float32).astype(np.float64))


BAD = [
    ("ragged.csv", "a,b,c\n1,2,0\n\n1,2,3,4\n", "line 4 has 4 fields, expected 3"),
    ("short.csv", "1,2,0\n1,0\n", "line 2 has 2 fields, expected 3"),
    ("word.csv", "x,y,l\n1,2,0\n1,abc,1\n", "line 3, column 2: 'abc' is not a number"),
    ("empty-cell.csv", "1,2,0\n1,,0\n", "line 2, column 2: '' is not a number"),
    ("nan.csv", "1,2,0\n1,nan,1\n", "line 2, column 2: 'nan' is not finite"),
    ("inf.csv", "-inf,2,0\n", "line 1, column 1: '-inf' is not finite"),
    ("label.csv", "1,2,0\n1,2,1\n# c\n\n1,2,2\n", "line 5: label 2.0; labels must be 0 or 1"),
    ("half.csv", "1,2,0.5\n", "line 1: label 0.5; labels must be 0 or 1"),
    ("empty.csv", "", "no data rows"),
    ("header-only.csv", "x1,x2,y\n# nothing\n", "no data rows"),
    ("no-features.csv", "1\n0\n", "line 1 has 1 field; expected feature columns then a 0/1 label"),
    ("latin1.csv", "x1,x2,y\n1,2,0 # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    ("missing.csv", None, "cannot read the file (No such file or directory)"),
    ("moons.txt", "1,2,0\n", "expected a .csv or .npz file"),
    ("npy.npz", b"\x93NUMPY\x01\x00", "not an NPZ archive; expected a zip of arrays 'x' (n, d)"),
    ("corrupt.npz", npz_bytes(x=X, y=Y)[:60], "not a readable NPZ archive"),
    ("names.npz", npz_bytes(a=X, b=Y), "expected arrays 'x' (n, d) and 'y' (n,), or 'X' and 'Y'"),
    ("x1d.npz", npz_bytes(x=Y, y=Y), "array 'x' has shape (3,); expected (n, d)"),
    ("y2d.npz", npz_bytes(x=X, y=Y[:, None]), "array 'y' has shape (3, 1); expected (n,)"),
    ("rows.npz", npz_bytes(x=X, y=Y[:2]), "'x' has 3 rows but 'y' has 2 labels"),
    ("strings.npz", npz_bytes(x=X.astype(str), y=Y), "array 'x' has dtype <U"),
    ("objects.npz", npz_bytes(x=X.astype(object), y=Y), "not a readable NPZ archive (Object"),
    ("nofeat.npz", npz_bytes(x=np.zeros((3, 0)), y=Y), "expected at least 1 feature column"),
    ("norows.npz", npz_bytes(x=np.zeros((0, 2)), y=np.zeros(0)), "no data rows"),
    ("nanx.npz", npz_bytes(x=np.where(X > 2, np.nan, X), y=Y), "x[2, 0] is nan; values must be"),
    ("labels.npz", npz_bytes(x=X, y=np.array([0.0, -1.0, 1.0])), "y[1] is label -1.0; labels"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_files(tmp_path, name, content, message):
    p = tmp_path / name
    if isinstance(content, str):
        p.write_text(content, encoding="utf-8")
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_dataset(p)
    text = str(err.value)
    assert err.value.param == "dataset" and "\n" not in text
    assert text.startswith(f"dataset: {p}: ")
    assert message in text


def test_a_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(ConfigError, match=r"d\.csv: cannot read the file"):
        load_dataset(tmp_path / "d.csv")


def test_get_dataset_by_name_and_by_path(tmp_path, monkeypatch):
    assert get_dataset("lab") is DATASETS["lab"] and get_dataset("xor") is DATASETS["xor"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "moons.csv").write_text("0,0.5,1\n-1,2,0\n3,-0.25,1\n")
    assert_data(get_dataset("data/moons.csv", base=tmp_path))
    assert_data(get_dataset(str(tmp_path / "data" / "moons.csv"), base=tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path / "data")
    assert_data(get_dataset("moons.csv"))  # no base: the current directory
    with pytest.raises(ConfigError, match=r"elsewhere/moons\.csv: cannot read"):
        get_dataset("moons.csv", base=tmp_path / "elsewhere")


def test_unknown_names_still_say_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        get_dataset("lav")
    assert str(err.value) == (
        "dataset: unknown value 'lav' (did you mean 'lab'?); allowed: lab, xor, "
        "or a path to a .csv or .npz file"
    )
    with pytest.raises(ConfigError, match="unknown value 3"):
        dataset_digest(3)


def test_is_path():
    assert is_path("moons.csv") and is_path("MOONS.NPZ") and is_path("data/moons")
    assert not is_path("lab") and not is_path("moons") and not is_path(None)


def test_digest_follows_the_bytes(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("0,0.5,1\n-1,2,0\n")
    d0 = dataset_digest(p)
    assert dataset_digest("d.csv", base=tmp_path) == d0 and len(d0) == 64
    assert load_dataset(p) is load_dataset(p)  # cached, not re-read
    st = p.stat()
    p.write_text("0,0.5,0\n-1,2,0\n")  # same size, and possibly the same mtime tick
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert dataset_digest(p) != d0 and load_dataset(p).y[0] == 0.0
    p.write_text("0,0.5,1\n-1,2,0\n")
    assert dataset_digest(p) == d0  # the bytes, not the time stamp
    assert dataset_digest("lab") != dataset_digest("xor") and dataset_digest("lab") != d0


def test_cached_arrays_are_read_only(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("0,0.5,1\n")
    with pytest.raises(ValueError, match="read-only"):
        load_dataset(p).x[0, 0] = 5.0


def test_a_file_dataset_trains(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("x1,x2,y\n0,0,1\n1,0,0\n0,-1,0\n-1,0,0\n0,1,0\n")
    params = jaxlab.init_params(jax.random.key(0), (2, 3, 1), 1.0)
    out = jaxlab.train(params, load_dataset(p), 1.0, max_steps=5)
    assert np.isfinite(float(out.value)) and int(out.steps) >= 1


def test_a_sweep_reads_a_csv_dataset_and_a_resume_refuses_a_changed_file(tmp_path, capsys):
    """`dataset = "data.csv"` trains the network on the file's points; its content is part of the
    config hash, so a changed file is refused on resume (one line, exit 2, nothing rewritten)."""
    from jaxlab.cli import main

    data = tmp_path / "data.csv"
    data.write_text("x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    out = tmp_path / "run"
    args = ["sweep", "--dataset", str(data), "--widths", "2-3-1", "--n-runs", "20",
            "--lr", "1", "--scale", "1", "--max-steps", "20", "--devices", "1", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(out), "--no-figures"]) == 0
    assert str(data) in (out / "config.toml").read_text()
    xor = tmp_path / "xor"
    assert main([*args[:2], "xor", *args[3:], "--out", str(xor), "--no-figures"]) == 0
    # The file holds XOR's points: the same restarts give the same cells as the named dataset.
    a = (out / "cells.csv").read_text().splitlines()[1]
    b = (xor / "cells.csv").read_text().splitlines()[1]
    assert a == b
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    data.write_text("x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,1\n")
    capsys.readouterr()
    assert main(["sweep", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "dataset" in err and "config.toml" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
