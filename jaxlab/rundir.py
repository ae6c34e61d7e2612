"""A run directory on disk: atomic writes and a lock.

Every file is written to a temporary file in the same directory, flushed, then renamed over the
target (``os.replace`` is atomic on POSIX), so a reader or a resumed sweep sees the old file or
the new one, never half of one. A killed process can leave a ``.tmp-*`` file behind; it is
ignored and removed on the next open. ``.lock`` holds the owner's pid, host and start time; a
lock whose process is gone (same host) is stale and is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError

__all__ = ["RunLock", "atomic_write", "clean_temporaries", "load_npz", "save_npz"]


class DiskError(ConfigError):
    """Writing to the run directory failed (disk full, permissions); finished chunks are kept."""


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` all or nothing."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            _fault_point()
            f.write(data[half:])
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DiskError("out", f"could not write {path}: {e.strerror or e}") from None


_WRITES = {"n": 0}


def _fault_point() -> None:
    """Fault injection for the crash tests: with ``JAXLAB_FAULT_KILL_AT_WRITE=N`` the process
    kills itself (SIGKILL) halfway through its N-th file write; ``JAXLAB_FAULT_FAIL_AT_WRITE=N``
    makes that write fail as on a full disk. Unset, this does nothing."""
    _WRITES["n"] += 1
    kill_at = os.environ.get("JAXLAB_FAULT_KILL_AT_WRITE")
    if kill_at and int(kill_at) == _WRITES["n"]:
        os.kill(os.getpid(), signal.SIGKILL)
    fail_at = os.environ.get("JAXLAB_FAULT_FAIL_AT_WRITE")
    if fail_at and int(fail_at) <= _WRITES["n"]:
        raise OSError(errno.ENOSPC, "No space left on device")


def save_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def clean_temporaries(directory) -> int:
    """Remove ``.tmp-*`` files a killed writer left; return how many."""
    n = 0
    for p in Path(directory).rglob(".tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` -- exclusive use of a run directory by one sweep."""

    def __init__(self, directory):
        self.path = Path(directory) / ".lock"
        self.owned = False

    def _describe(self) -> tuple[dict, str]:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
        return info, f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {since}"

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info, who = self._describe()
                stale = (
                    info.get("host") == me["host"]
                    and isinstance(info.get("pid"), int)
                    and not _pid_alive(info["pid"])
                )
                if not info or stale:
                    # Take over atomically: rename the stale lock away, then retry O_EXCL.
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.path, self.path.with_name(f".lock.stale-{os.getpid()}"))
                        os.unlink(self.path.with_name(f".lock.stale-{os.getpid()}"))
                    continue
                raise ConfigError(
                    "out",
                    f"{self.path.parent} is in use by another sweep ({who}); "
                    "wait for it or choose another --out",
                ) from None
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    raise ConfigError("out", f"{self.path.parent} is not writable") from None
                raise DiskError("out", f"could not lock {self.path.parent}: {e.strerror}") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.owned = True
            return self
        raise ConfigError("out", f"could not take the lock on {self.path.parent}; try again")

    def release(self) -> None:
        if self.owned:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.owned = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
