"""The library's own error and warning types.

Every one of them is a ``ValueError`` (warnings: ``UserWarning``), so code that caught ``ValueError`` before
keeps working, and ``skeletok ...`` commands print their message (``skeletok: error: ...``) instead of a
traceback.

- :class:`InputFileError`: a file cannot be read as what it should be; the message starts with the file's
  path and says what is wrong and, where there is one, the fix. :class:`MotionFileError` (BVH, ASF/AMC,
  ``.npy``/``.npz`` joint positions, DeepMimic clips) and :class:`KeypointFileError` (2D detections) are its
  two kinds.
- :class:`JointMappingError`: a motion's joints cannot be mapped onto the landmarks the 17 sparse joints need
  (see :data:`skeletok.data.motion.presets.REQUIRED_LANDMARKS`); the message lists the missing landmarks and shows a
  JSON mapping to write.
- :class:`MotionWarning`: a file was read, but something in it was repaired or looks doubtful (a frame count
  that disagrees with the data, a body that is not upright after an explicit ``up``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

__all__ = ["InputFileError", "MotionFileError", "KeypointFileError", "JointMappingError", "MotionWarning",
           "file_errors"]


class InputFileError(ValueError):
    """A file that cannot be read; ``str(err)`` is ``"<path>: <what is wrong>"``.

    Attributes:
        path: the file.
        reason: the message without the path.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable across processes (DataLoader workers, multiprocessing)
        return type(self), (self.path, self.reason)


class MotionFileError(InputFileError):
    """A motion capture file (BVH, ASF/AMC, ``.npy``/``.npz``, DeepMimic ``.txt``) that cannot be read."""


class KeypointFileError(InputFileError):
    """A 2D keypoint file (COCO, OpenPose, mmpose JSON or ``.npz``) that cannot be read."""


class JointMappingError(ValueError):
    """A motion's joint names do not cover the landmarks the sparse joints need.

    Attributes:
        missing: the canonical landmarks no joint maps to.
        template: a JSON-ready mapping (``{"name": ..., "joints": {source: landmark}}``) to complete and pass
            as ``mapping=`` (``--mapping FILE``): what could be matched, plus a ``"<...>"`` placeholder key per
            missing landmark.
    """

    def __init__(self, message: str, missing: list[str] | None = None, template: dict | None = None):
        self.missing = list(missing or [])
        self.template = template
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.missing, self.template)


class MotionWarning(UserWarning):
    """A motion file was read, with a repair or a doubt worth a look (the message names the file)."""


@contextmanager
def file_errors(path: str | Path, error: type[InputFileError] = MotionFileError, what: str = "file"):
    """Context manager: any exception in the block leaves as ``error(path, ...)``.

    :class:`InputFileError` passes unchanged; a ``ValueError`` keeps its message (prefixed by the path
    when it lacks it); anything else (a parser bug or a file no check foresaw) becomes "cannot read this
    <what>" with the original type and message, the original chained as ``__cause__``.
    """
    try:
        yield
    except InputFileError:
        raise
    except ValueError as err:
        msg = str(err)
        prefix = f"{path}: "
        raise error(path, msg[len(prefix):] if msg.startswith(prefix) else msg) from err
    except Exception as err:  # noqa: BLE001 - the point: a user's file never ends in a traceback
        raise error(path, f"cannot read this {what} ({type(err).__name__}: {err})") from err
