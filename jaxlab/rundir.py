"""A run directory on disk: atomic writes and a lock.

Every file is written to a temporary file in the same directory, flushed, then renamed over the
target (``os.replace`` is atomic on POSIX), so a reader or a resumed sweep sees the old file or
the new one, never half of one. A killed process can leave a ``.tmp-*`` file behind; it is
ignored and removed on the next open. ``.lock`` is held with ``flock`` for the sweep's lifetime and
records the owner's pid, host and start time; the lock of a process that died is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import signal
import socket
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError

__all__ = ["ChunkLog", "RunLock", "atomic_write", "clean_temporaries", "load_npz", "save_npz"]


class DiskError(ConfigError):
    """Writing to the run directory failed (disk full, permissions); finished chunks are kept."""


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` all or nothing."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for everyone to read
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
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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


def _alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return True  # another host's process cannot be checked from here
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` -- exclusive use of a run directory by one sweep.

    The lock is a kernel ``flock`` on ``.lock``, held while the sweep runs: the kernel drops it
    when the process dies, however it dies, so a stale lock is taken over without any race (two
    processes finding the same stale lock cannot both win, as they could by renaming it away).
    The file also records the owner's pid, host and start time for the message. A lock written
    on another host is refused: its process cannot be checked from here.
    """

    def __init__(self, directory):
        self.path = Path(directory) / ".lock"
        self.owned = False
        self._fd: int | None = None

    def _describe(self, wait: bool = False) -> tuple[dict, str]:
        info: dict = {}
        for _ in range(20 if wait else 1):  # the owner writes its record just after locking
            try:
                info = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            if not isinstance(info, dict):
                info = {}
            # A new owner may not have replaced a dead one's record yet: wait for a live pid.
            if not wait or (info and _alive(info)):
                break
            time.sleep(0.01)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
        return info, f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {since}"

    def _in_use(self, who: str) -> ConfigError:
        return ConfigError(
            "out",
            f"{self.path.parent} is in use by another sweep ({who}); "
            "wait for it or choose another --out",
        )

    def check_free(self) -> None:
        """Raise the "in use" error if a live sweep holds this lock; touches nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise self._in_use(self._describe(wait=True)[1]) from None
        finally:
            os.close(fd)

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    raise ConfigError("out", f"{self.path.parent} is not writable") from None
                raise DiskError("out", f"could not lock {self.path.parent}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._in_use(self._describe(wait=True)[1]) from None
            try:  # a releasing owner unlinks .lock: make sure ours is still the file there
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info, who = self._describe()
            if info.get("host", me["host"]) != me["host"]:
                os.close(fd)
                raise ConfigError(
                    "out",
                    f"{self.path.parent} is in use by another sweep ({who}), as far as can be "
                    f"told from this host; wait for it, choose another --out, or if no sweep "
                    f"runs there (a damaged lock), delete {self.path}",
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            self._fd, self.owned = fd, True
            return self
        raise ConfigError("out", f"could not take the lock on {self.path.parent}; try again")

    def release(self) -> None:
        if self.owned:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # before closing: a waiter then sees a new file, not ours
            os.close(self._fd)
            self._fd, self.owned = None, False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class ChunkLog:
    """An append-only log of finished chunks, so that each chunk is on disk the moment it is done
    at the cost of a small append (its rows only), not a rewrite of the whole state.

    A record is ``magic, task, first_cell, payload length, crc32`` then the payload (an ``.npz``
    of the chunk's arrays); the CRC-32 covers the header too (with its own field zero), so that
    a flipped byte in ``first_cell`` cannot add a chunk's counts to the wrong cells. A record
    cut short by a crash, or damaged, fails its length or checksum and is dropped with
    everything after it (those chunks are recomputed); :meth:`read` returns the whole records in
    order and cuts such a tail off the file.
    """

    _HEAD = struct.Struct("<4sqqqI")
    _MAGIC = b"JXLB"

    def __init__(self, path):
        self.path = Path(path)

    def append(self, task: int, first_cell: int, **arrays) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
        crc = self._crc(task, first_cell, payload)
        head = self._HEAD.pack(self._MAGIC, task, first_cell, len(payload), crc)
        record = head + payload
        try:
            with open(self.path, "ab") as f:
                half = len(record) // 2
                f.write(record[:half])
                f.flush()
                _fault_point()
                f.write(record[half:])
                f.flush()
        except OSError as e:
            raise DiskError("out", f"could not write {self.path}: {e.strerror or e}") from None

    def read(self) -> list[tuple[int, int, dict]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out, k, n = [], 0, self._HEAD.size
        while k + n <= len(data):
            magic, task, first, size, crc = self._HEAD.unpack_from(data, k)
            payload = data[k + n : k + n + size]
            if (
                magic != self._MAGIC
                or len(payload) != size
                or self._crc(task, first, payload) != crc
            ):
                break  # torn tail: a crash mid-append
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                out.append((task, first, {key: z[key] for key in z.files}))
            k += n + size
        if k < len(data):  # drop the torn tail, so that new records follow whole ones
            try:
                os.truncate(self.path, k)
            except OSError as e:
                raise DiskError("out", f"could not repair {self.path}: {e.strerror or e}") from None
        return out

    @classmethod
    def _crc(cls, task: int, first_cell: int, payload: bytes) -> int:
        head = cls._HEAD.pack(cls._MAGIC, task, first_cell, len(payload), 0)
        return zlib.crc32(payload, zlib.crc32(head))

    def reset(self) -> None:
        """Empty the log (after its records went into a checkpoint)."""
        atomic_write(self.path, b"")
