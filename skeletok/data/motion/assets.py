"""Committed real motion capture: build from registry packages once, load offline.

Shapes: ``t`` frames, ``j`` joints, ``n`` frames of all sequences of one file.

Sources (downloaded with ``pip download --no-deps``; nothing is installed or imported from them):

- ``holosoma-retargeting==0.1.0`` (Apache-2.0): 5 climbing mocap sequences, 53-joint positions in
  metres, Z-up. Their rate is 120 fps: holosoma's ``examples/robot_retarget.py`` takes every 4th
  frame of these arrays (``downsample = 4``) and its retargeter saves the result with ``fps=30``.
- ``pybullet==3.2.7`` (zlib): the 20 DeepMimic humanoid clips (``humanoid3d_*.txt``, ``walker/*.txt``),
  through :func:`~skeletok.data.motion.deepmimic.read_deepmimic`, resampled to 30 fps.
- ``bvhtoolbox==0.1.3`` sdist (MIT): ``tests/example_files/test_freebvh.bvh`` (Mixamo rig) and
  ``test_mocapbank.bvh``, through :func:`~skeletok.data.motion.bvh.read_bvh` (both cm, Y-up, 30 fps).

Each ``motion_<source>.npz`` keeps the body joints its mapping preset uses, as int16 millimetres
stored as frame-to-frame differences (lossless at 1 mm, compresses well), with per-sequence
``names``, ``actions`` (``""`` for none), ``fps``, ``frames`` and one ``joint_names``/``parents``.
Files are written with ``np.savez_compressed``, whose zip entries carry a fixed 1980-01-01 timestamp,
so the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from skeletok.data.motion.arrays import HOLOSOMA_JOINTS, HOLOSOMA_PARENTS, parents_from_table
from skeletok.data.motion.bvh import read_bvh
from skeletok.data.motion.deepmimic import URDF_ORIGINS, read_deepmimic, read_humanoid_urdf
from skeletok.data.motion.mapping import get_mapping
from skeletok.data.motion.core import Motion

__all__ = ["ASSET_DIR", "SOURCES", "build_motion_assets", "load_motion_assets", "NOTICE_TEXT"]

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets"  # skeletok/data/assets
HOLOSOMA_FPS = 120.0
DEEPMIMIC_FPS = 30.0

#: asset file stem -> (pip requirement, mapping preset)
SOURCES = {
    "holosoma": ("holosoma-retargeting==0.1.0", "holosoma"),
    "deepmimic": ("pybullet==3.2.7", "deepmimic"),
    "bvh_mixamo": ("bvhtoolbox==0.1.3", "mixamo"),
    "bvh_mocapbank": ("bvhtoolbox==0.1.3", "mocapbank"),
}

NOTICE_TEXT = """\
skeletok/data/assets/motion_holosoma.npz
  Source: holosoma-retargeting 0.1.0 (PyPI wheel), holosoma_retargeting/demo_data/climb/mocap_climb_seq_{0..4}/
  *_joint_positions_*.npy, joint names from holosoma_retargeting/config_types/data_type.py (MOCAP_DEMO_JOINTS).
  Licence: Apache License 2.0. Copyright the holosoma authors.
  Done: kept the 25 body joints of 53 that the holosoma joint mapping uses (fingers: Index1 and Thumb1 only),
  all 12,939 frames at the source's 120 fps, quantised to int16 millimetres (time-differenced), per-sequence names, action "climb".

skeletok/data/assets/motion_deepmimic.npz
  Source: pybullet 3.2.7 (PyPI wheel), pybullet_data/data/motions/humanoid3d_*.txt and walker/*.txt (20 DeepMimic
  clips, 1,810 keyframes) and pybullet_data/humanoid/humanoid.urdf. The clips come from the DeepMimic project
  (Peng et al., SIGGRAPH 2018) as redistributed in pybullet. Licence: zlib licence (pybullet / Bullet Physics).
  Done: forward kinematics of the 15 humanoid joints and 3 end sites (crown, toe tips; URDF joint origins and
  collision shapes at scale 0.25), Y-up rotated to Z-up,
  resampled to 30 fps (quaternion slerp), int16 millimetres (time-differenced); action = clip name.

skeletok/data/assets/motion_bvh_mixamo.npz, skeletok/data/assets/motion_bvh_mocapbank.npz
  Source: bvhtoolbox 0.1.3 (PyPI sdist), tests/example_files/test_freebvh.bvh (Mixamo rig names) and
  tests/example_files/test_mocapbank.bvh. Licence: MIT License, Copyright (c) 2018 Olaf Haag.
  Done: forward kinematics of the BVH channels, centimetres to metres, Y-up rotated to Z-up, body joints the
  mixamo / mocapbank joint mappings use, int16 millimetres (time-differenced); no action labels in the source.
"""


def _download(requirement: str, cache_dir: Path, sdist: bool) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    pattern = f"{stem}.tar.gz" if sdist else f"{stem}-*.whl"
    found = sorted(cache_dir.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", str(cache_dir)]
        cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        subprocess.run(cmd, check=True)
        found = sorted(cache_dir.glob(pattern))
    if not found:
        raise ValueError(f"pip download of {requirement} left no {pattern} in {cache_dir}")
    return found[0]


def _extract(archive: Path, wanted, dest: Path) -> list[Path]:
    """Extract the members whose names satisfy ``wanted(name)``; returns their paths, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if wanted(n) and not n.endswith("/"):
                    (dest / n).parent.mkdir(parents=True, exist_ok=True)
                    (dest / n).write_bytes(z.read(n))
                    out.append(dest / n)
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile() and wanted(m.name):
                    (dest / m.name).parent.mkdir(parents=True, exist_ok=True)
                    (dest / m.name).write_bytes(t.extractfile(m).read())
                    out.append(dest / m.name)
    return sorted(out)


def _body(motion: Motion, preset: str) -> Motion:
    keep = set(get_mapping(preset).resolve(motion.joint_names).values())
    return motion.select([n for i, n in enumerate(motion.joint_names) if i in keep])


def _save(path: Path, motions: list[Motion], mapping: str) -> None:
    names = motions[0].joint_names
    if any(m.joint_names != names for m in motions):
        raise ValueError(f"{path}: all sequences of one asset file must share the joint list")
    mm = [np.round(m.positions.astype(np.float64) * 1000.0) for m in motions]
    if max(float(np.abs(x).max()) for x in mm) > 32000:
        raise ValueError(f"{path}: positions beyond +-32 m do not fit int16 millimetres")
    deltas = np.concatenate([np.diff(x, axis=0, prepend=0.0) for x in mm]).astype(np.int16)
    np.savez_compressed(
        path, format_version=np.array(1), mapping=np.array(mapping), joint_names=np.array(names),
        parents=motions[0].parents, names=np.array([m.name for m in motions]),
        actions=np.array([m.action or "" for m in motions]), fps=np.array([m.fps for m in motions]),
        frames=np.array([m.num_frames for m in motions], dtype=np.int64), delta_mm=deltas,
    )


def build_motion_assets(out_dir: str | Path = ASSET_DIR, cache_dir: str | Path = "~/.cache/skeletok/motion_sources") -> dict:
    """Download the three packages (if not cached), convert them and write the asset files.

    Args:
        out_dir: where ``motion_*.npz`` and ``NOTICE.motion.txt`` go (default: the package's assets).
        cache_dir: where the downloaded archives and extracted files are kept.

    Returns:
        ``{file stem: {"sequences": s, "frames": n, "bytes": size}}``.
    """
    out_dir, cache_dir = Path(out_dir), Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = cache_dir / "extracted"
    result = {}

    whl = _download(SOURCES["holosoma"][0], cache_dir, sdist=False)
    holo = []
    for f in _extract(whl, lambda n: "demo_data/climb/" in n and "_joint_positions_" in n and n.endswith(".npy"), ext):
        pos = np.load(f)
        m = Motion(f"holosoma/{f.parent.name}", HOLOSOMA_JOINTS, parents_from_table(HOLOSOMA_JOINTS, HOLOSOMA_PARENTS),
                   pos, HOLOSOMA_FPS, "climb")
        holo.append(_body(m, "holosoma"))

    whl = _download(SOURCES["deepmimic"][0], cache_dir, sdist=False)
    urdf = _extract(whl, lambda n: n == "pybullet_data/humanoid/humanoid.urdf", ext)[0]
    if not np.allclose(read_humanoid_urdf(urdf), URDF_ORIGINS):
        raise ValueError(f"{urdf}: joint origins differ from skeletok.data.motion.deepmimic.URDF_ORIGINS")
    clips = _extract(whl, lambda n: n.startswith("pybullet_data/data/motions/") and n.endswith(".txt")
                     and ("/humanoid3d_" in n or "/walker/" in n), ext)
    deep = []
    for f in clips:
        m = read_deepmimic(f, fps=DEEPMIMIC_FPS)
        sub = "walker/" if f.parent.name == "walker" else ""
        deep.append(Motion(f"deepmimic/{sub}{m.name}", m.joint_names, m.parents, m.positions, m.fps, m.action))

    sdist = _download(SOURCES["bvh_mixamo"][0], cache_dir, sdist=True)
    bvhs = {Path(p).stem: p for p in _extract(sdist, lambda n: "tests/example_files/" in n and n.endswith(".bvh"), ext)}
    mix = _body(read_bvh(bvhs["test_freebvh"], name="bvhtoolbox/test_freebvh"), "mixamo")
    bank = _body(read_bvh(bvhs["test_mocapbank"], name="bvhtoolbox/test_mocapbank"), "mocapbank")

    for stem, motions in [("holosoma", holo), ("deepmimic", deep), ("bvh_mixamo", [mix]), ("bvh_mocapbank", [bank])]:
        path = out_dir / f"motion_{stem}.npz"
        _save(path, motions, SOURCES[stem][1])
        result[stem] = {"sequences": len(motions), "frames": sum(m.num_frames for m in motions), "bytes": path.stat().st_size}
    (out_dir / "NOTICE.motion.txt").write_text(NOTICE_TEXT, encoding="utf-8")
    return result


def load_motion_assets(
    *, canonical: bool = True, sources: list[str] | None = None, asset_dir: str | Path = ASSET_DIR
) -> list[Motion]:
    """Read the committed motion files (no network).

    Args:
        canonical: rename joints to the canonical landmarks with each file's mapping preset
            (:mod:`skeletok.data.motion.mapping`); ``False`` keeps the source joint names.
        sources: subset of :data:`SOURCES` keys (default: all, in that order).
        asset_dir: directory holding ``motion_*.npz``.

    Returns:
        One :class:`~skeletok.data.motion.core.Motion` per sequence, named ``"<source>/<sequence>"``,
        positions in metres (1 mm resolution), Z-up.
    """
    sources = list(SOURCES) if sources is None else sources
    out = []
    for stem in sources:
        if stem not in SOURCES:
            raise ValueError(f"sources must be among {list(SOURCES)}, got {stem!r}")
        path = Path(asset_dir) / f"motion_{stem}.npz"
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read motion asset ({e}); run build_motion_assets()") from None
        with z:
            names, delta = [str(n) for n in z["joint_names"]], z["delta_mm"]
            mapping = get_mapping(str(z["mapping"])) if canonical else None
            starts = np.concatenate([[0], np.cumsum(z["frames"])])
            for k in range(len(z["names"])):
                pos = np.cumsum(delta[starts[k]:starts[k + 1]].astype(np.int64), axis=0).astype(np.float32) / 1000.0
                act = str(z["actions"][k]) or None
                m = Motion(str(z["names"][k]), names, z["parents"], pos, float(z["fps"][k]), act)
                out.append(mapping.apply(m) if mapping is not None else m)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m skeletok.data.motion.assets [--out DIR] [--cache DIR]``: build and print a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ASSET_DIR))
    ap.add_argument("--cache", default="~/.cache/skeletok/motion_sources")
    args = ap.parse_args(argv)
    for stem, info in build_motion_assets(args.out, args.cache).items():
        print(f"motion_{stem}.npz: {info['sequences']} sequences, {info['frames']} frames, {info['bytes']} bytes")


if __name__ == "__main__":
    main()
