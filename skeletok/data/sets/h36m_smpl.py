"""SMPL meshes of Human3.6M for ``levels_from="smpl"``: the vertices file of ``skeletok data from-h36m --smpl``.

The file is one ``.npz`` (``np.savez``/``np.savez_compressed`` with keyword arrays):

- ``faces``: ``(f, 3)`` integer triangles (vertex indices from 0) shared by every mesh;
- one array per sequence of the 3D file, named ``"<subject>/<action>"`` as the 3D file names it (e.g.
  ``"S1/Walking 1"``): ``(t, v, 3)`` float vertices in the 3D file's world frame and units (metres, Z-up, as
  VideoPose3D's ``data_3d_h36m.npz``), with exactly the 3D sequence's ``t`` frames (before ``--stride``).

Other keys are ignored (a file may hold more subjects than are converted). The arrays are read one sequence at a
time (the file of all of Human3.6M is large); shapes are checked from the array headers before any conversion
starts, NaN/inf and the world frame (the meshes must sit on the 3D joints) as each sequence is read.
:class:`SmplVertices` reads the file, or wraps the nested dict the Python API also takes, so both are checked alike.

Shapes: ``t`` frames, ``v`` vertices, ``f`` faces.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from skeletok.errors import InputFileError

__all__ = ["SMPL_FILE_HELP", "SmplVertices"]

SMPL_FILE_HELP = ("the SMPL file is one .npz with 'faces' (f, 3) int and one (t, v, 3) float array of vertices per "
                  "sequence, named '<subject>/<action>' as in the 3D file (e.g. 'S1/Walking 1'), in the 3D file's "
                  "world frame, metres, and frame count")
# The meshes' centroid must lie this close (metres, median over a sequence's frames) to the 17 joints' centroid.
MAX_CENTROID_OFFSET_M = 0.5


def _header(zf: zipfile.ZipFile, name: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype of the ``.npy`` member ``name`` without reading its data."""
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return tuple(shape), np.dtype(dtype)


class SmplVertices:
    """SMPL vertices per sequence and their faces, from a file (:meth:`open`) or a nested dict (:meth:`from_dict`).

    Attributes:
        where: the file (or ``"smpl_vertices"``), the start of every error message.
        faces: ``(f, 3)`` int64 triangles.
        shapes: ``{"<subject>/<action>": shape}`` of every vertex array.
    """

    def __init__(self, where, faces, shapes: dict[str, tuple], dtypes: dict[str, np.dtype], arrays=None):
        self.where = str(where)
        self.shapes = shapes
        self._dtypes = dtypes
        self._arrays = arrays  # None: read from the file
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            self._fail(f"'faces' must be (f, 3) triangles, got shape {faces.shape}")
        if faces.dtype.kind not in "iu":
            self._fail(f"'faces' must hold integer vertex indices, got {faces.dtype}")
        if faces.min() < 0:
            self._fail(f"'faces' holds negative vertex indices ({int(faces.min())})")
        self.faces = faces.astype(np.int64)

    def _fail(self, reason: str):
        if self._arrays is None:
            raise InputFileError(self.where, reason)
        raise ValueError(f"{self.where}: {reason}")

    @classmethod
    def open(cls, path) -> SmplVertices:
        """Read the faces and the vertex arrays' headers of a SMPL file (module docstring).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            InputFileError: naming the file, when it is not an ``.npz`` or has no (or bad) ``faces``.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"SMPL file {str(path)!r} does not exist")
        if not zipfile.is_zipfile(path):
            raise InputFileError(path, f"not an .npz file; {SMPL_FILE_HELP}")
        shapes, dtypes = {}, {}
        try:
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    if name.endswith(".npy"):
                        shapes[name[:-4]], dtypes[name[:-4]] = _header(zf, name)
            if "faces" not in shapes:
                raise InputFileError(path, f"no 'faces' array; {SMPL_FILE_HELP}")
            with np.load(path) as npz:
                faces = npz["faces"]
        except InputFileError:
            raise
        except Exception as err:  # noqa: BLE001 - a user's file never ends in a traceback
            raise InputFileError(path, f"cannot read this SMPL file ({type(err).__name__}: {err})") from err
        del shapes["faces"], dtypes["faces"]
        return cls(path, faces, shapes, dtypes)

    @classmethod
    def from_dict(cls, vertices: dict, faces) -> SmplVertices:
        """Wrap the Python API's ``smpl_vertices`` (subject -> action -> ``(t, v, 3)``) and ``smpl_faces``."""
        arrays = {f"{s}/{a}": np.asarray(v) for s, acts in vertices.items() for a, v in acts.items()}
        return cls("smpl_vertices", faces, {k: v.shape for k, v in arrays.items()},
                   {k: v.dtype for k, v in arrays.items()}, arrays)

    def check(self, frames: dict[str, int], data_3d) -> int:
        """Check that every sequence of the 3D file has vertices of the right shape; returns ``v``.

        Args:
            frames: ``{"<subject>/<action>": t}`` of the 3D file's sequences to convert.
            data_3d: the 3D file (for messages).

        Raises:
            ValueError: (`skeletok.errors.InputFileError` for a file) naming the file, for missing sequences (a
                few listed), arrays not ``(t, v, 3)`` float, another vertex count than the other sequences' or
                than ``faces`` index, frame counts that differ from the 3D file's.
        """
        missing = [k for k in frames if k not in self.shapes]
        if missing:
            have = sorted(self.shapes)
            self._fail(f"no vertices for {len(missing)} of the {len(frames)} sequences of {data_3d} to convert: "
                       f"{', '.join(repr(k) for k in missing[:5])}{', ...' if len(missing) > 5 else ''} (the file "
                       f"has {len(have)} vertex arrays{': ' + ', '.join(repr(k) for k in have[:5]) if have else ''}"
                       f"{', ...' if len(have) > 5 else ''}); {SMPL_FILE_HELP}")
        v = None
        for key, t in frames.items():
            shape, dtype = self.shapes[key], self._dtypes[key]
            if len(shape) != 3 or shape[2] != 3 or shape[1] < 3:
                self._fail(f"{key!r} must be (t, v, 3) vertices, got shape {shape}")
            if dtype.kind not in "fiu":
                self._fail(f"{key!r} must hold float vertices, got {dtype}")
            if v is None:
                v, first = shape[1], key
            elif shape[1] != v:
                self._fail(f"{key!r} has {shape[1]} vertices but {first!r} has {v}; every mesh shares 'faces'")
            if shape[0] != t:
                self._fail(f"{key!r} has {shape[0]} frames but {data_3d} has {t} for that sequence; the vertices "
                           "must cover the 3D file's frames one for one")
        if v is not None and self.faces.max() >= v:
            self._fail(f"'faces' index vertex {int(self.faces.max())} but the meshes have {v} vertices")
        return v or 0

    def load(self, key: str, joints17: np.ndarray) -> np.ndarray:
        """The ``(t, v, 3)`` float64 vertices of sequence ``key``, checked against its ``(t, 17, 3)`` joints.

        Raises:
            ValueError: (`skeletok.errors.InputFileError` for a file) naming the file and the sequence, for
                NaN/inf vertices or meshes that do not sit on the joints (another world frame or unit).
        """
        if self._arrays is not None:
            verts = self._arrays[key]
        else:
            try:
                with np.load(self.where) as npz:
                    verts = npz[key]
            except Exception as err:  # noqa: BLE001
                raise InputFileError(self.where, f"cannot read {key!r} ({type(err).__name__}: {err})") from err
        verts = np.asarray(verts, dtype=np.float64)
        bad = ~np.isfinite(verts)
        if bad.any():
            frame = int(np.flatnonzero(bad.any((1, 2)))[0])
            self._fail(f"{key!r} holds {int(bad.sum())} NaN/inf values (first in frame {frame}); every vertex of "
                       "every frame must be known")
        offset = float(np.median(np.linalg.norm(verts.mean(1) - np.asarray(joints17).mean(1), axis=-1)))
        if offset > MAX_CENTROID_OFFSET_M:
            self._fail(f"{key!r}: the meshes' centroid lies {offset:.3g} from the 3D joints' centroid (median over "
                       f"frames; more than {MAX_CENTROID_OFFSET_M} m); the vertices must be in the 3D file's world frame and in metres")
        return verts
