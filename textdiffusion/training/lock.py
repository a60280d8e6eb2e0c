"""OUT/.lock: one training run per output folder.

The lock is an advisory `flock` on OUT/.lock, which holds the owner's PID, host and start time as JSON. The kernel
drops a flock when its process dies, however it dies, so a lock file whose flock is free was left by a run that is
gone (killed, out of memory, a lost node): the next run takes it over with a warning. The file is removed when the
run ends, on errors and Ctrl-C too (a `with` block). Where `fcntl` is missing, the PID alone decides (a PID that is
not alive on this host is a stale lock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from textdiffusion.training.state import TrainingError

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLocked(TrainingError):
    """Another live run holds OUT/.lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except (OSError, OverflowError):
        return False
    return True


def _describe(owner: dict) -> str:
    since = owner.get("started")
    when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
    return f"PID {owner.get('pid', '?')} on host {owner.get('host', '?')}{when}"


class RunLock:
    """Hold OUT/.lock for the duration of a `with` block (re-entrant within one process).

    Raises `RunLocked` (a TrainingError, one line) when a live run holds it.
    """

    _held: dict[
        Path, list
    ] = {}  # resolved lock path -> [fd, depth]: the nested `with` of one process

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_NAME

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _key(self) -> Path:
        return self.path.resolve()

    def acquire(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"cannot create --out {self.out}: {exc.strerror}") from None
        key = self._key()
        if key in RunLock._held:
            RunLock._held[key][1] += 1
            return
        host, pid = socket.gethostname(), os.getpid()
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise TrainingError(f"cannot write {self.path}: {exc.strerror}") from None
            try:
                if self._lock(fd):
                    break
                os.close(
                    fd
                )  # released (unlinked) between our open and our flock: retry on the new file
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
        owner = self._owner(fd)
        if owner:
            if owner.get("host") != host:
                # its flock may not reach us across machines, and its PID cannot be checked from here
                os.close(fd)
                raise RunLocked(
                    f"{self._busy(owner)}; if no run is alive there, delete {self.path}"
                )
            logger.warning(
                "%s was left by a run that is no longer alive (%s); taking it over",
                self.path,
                _describe(owner),
            )
        os.ftruncate(fd, 0)
        os.write(
            fd, (json.dumps({"pid": pid, "host": host, "started": time.time()}) + "\n").encode()
        )
        os.fsync(fd)
        RunLock._held[key] = [fd, 1]

    def _lock(self, fd: int) -> bool:
        """Take the flock of the open lock file `fd`: True once held, False when the file was replaced meanwhile;
        RunLocked when a live run holds it."""
        if fcntl is None:
            owner = self._owner(fd)
            pid = owner.get("pid")
            if (
                owner.get("host") == socket.gethostname()
                and isinstance(pid, int)
                and _pid_alive(pid)
            ):
                raise RunLocked(self._busy(owner))
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(self._busy(self._owner(fd))) from None
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _owner(fd: int) -> dict:
        """The PID, host and start time recorded in an open lock file ({} when empty or unreadable)."""
        try:
            data = os.pread(fd, 4096, 0)
            owner = json.loads(data.decode()) if data.strip() else {}
        except (OSError, ValueError):
            return {"pid": "?", "host": "?"}
        return owner if isinstance(owner, dict) else {"pid": "?", "host": "?"}

    def _busy(self, owner: dict) -> str:
        return (
            f"{self.out} is in use by another training run ({_describe(owner)}; {self.path}); wait for it to "
            "finish or choose another --out"
        )

    def release(self) -> None:
        held = RunLock._held.get(self._key())
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del RunLock._held[self._key()]
        with contextlib.suppress(OSError):
            os.unlink(
                self.path
            )  # before closing: a waiting run then opens a new file (the inode check)
        with contextlib.suppress(OSError):
            os.close(held[0])
