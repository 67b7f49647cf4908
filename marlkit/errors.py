"""marlkit's own error types beyond those of its modules, and which of them the CLI reports how.

Each module raises its own kind (:class:`~marlkit.algos.base.ConfigError`, :class:`~marlkit.data.dataset.DatasetError`,
:class:`~marlkit.checkpoint.CheckpointError`, :class:`~marlkit.envs.registry.UnknownNameError`,
:class:`~marlkit.bench.grid.GridError`, :class:`~marlkit.train.NonFiniteLossError`); the ones here are shared:

- :class:`DeviceError`: a device that does not exist or is not available here (a usage error);
- :class:`OutputError`: an output path that cannot be written (a file where a directory is needed, no
  permission, a read-only filesystem, no space left on the device);
- :class:`RunExistsError`: an output directory that already holds a run (refused without resume or overwrite);
- :class:`ResourceError`: a run that does not fit in this machine's memory.

The ``marlkit`` command prints any of them as one ``marlkit: error: ...`` line: exit status 2 for usage errors
(bad options, names, files given), 1 for failures while running (out of memory, disk full, non-finite loss).
"""

from __future__ import annotations

import errno

__all__ = ["DeviceError", "OutputError", "ResourceError", "RunExistsError", "describe_os_error"]


class DeviceError(ValueError):
    """A device string that names no usable device (unknown type, no CUDA, index out of range)."""


class OutputError(OSError):
    """An output path that cannot be written; the message names the path and the reason."""


class RunExistsError(FileExistsError):
    """An output directory that already holds a run; names it and the ways forward (resume, new --out,
    --overwrite)."""


class ResourceError(MemoryError):
    """A run that does not fit in memory (networks or data too large); names what was being allocated."""


_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only filesystem",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EEXIST: "a file of that name exists",
    errno.EISDIR: "it is a directory",
}


def describe_os_error(exc: OSError) -> str:
    """A plain reason for an OS-level failure (``"no space left on device"``, ``"permission denied"``, ...)."""
    return _REASONS.get(exc.errno, exc.strerror or str(exc))
