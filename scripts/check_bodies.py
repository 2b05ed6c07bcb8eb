"""Measure the body quality of the default data (issue 10, item 5): edge stretch, floor penetration, parts.

For every take of the committed motion assets (resampled to the default dataset's 50 fps, on the body shape the
default build gives its base variant), retarget onto the body and report

- the worst edge stretch: max over frames and mesh edges of posed length / rest length (and the 99.9th
  percentile of the per-edge maxima), with the rig bones of the worst edge;
- floor penetration: the lowest vertex (over all frames) after the sequence is grounded as the builder grounds it
  (``skeletok.data.sets.build._ground_lift`` when present, else the old rule: lowest sparse/fine point);
- parts mismatch: fine points whose part differs from their dense parent's part;
- DeepMimic head/foot: the largest angle (degrees) between the Head (and LeftFoot) rotation and the chest
  (resp. shin) rotation over each clip (0: rigid with the parent).

It also poses every body shape in a 45 and a 90 degree straddle (both thighs turned outwards) and with both arms
raised 120 degrees, and reports the worst edge stretch there.

Run: ``python scripts/check_bodies.py [--frames N]`` (``--frames``: at most N evenly spaced frames per take).

Measured (all frames, issue 10 item 5), before -> after:

- edge stretch over the default data: max 65.0x (99.9th pct 6.2x, 393 edges over 2x) -> 3.3x (2.6x, 137);
- straddle 45 / 90 degrees: 57.5x / 127x -> 3.3x / 5.8x; arms raised 120 degrees: 5.7x -> 2.8x;
- lowest vertex after grounding: worst take -81.0 mm, median -28.2 mm, 27 of 27 takes below -1 mm -> 0 mm, 0 of 27;
- fine points whose part differs from their dense parent's: 22 of 96 -> 0;
- DeepMimic max Head-vs-Spine1 angle per clip: 0 in all 20 clips -> median 21.5 deg (walk and run: 1.3 deg, their
  neck quaternion is constant); LeftFoot-vs-LeftLeg: 0 -> median 36.6 deg, at least 21.9 deg in every clip.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skeletok.data.body.levels import build_levels
from skeletok.data.body.model import BodyModel
from skeletok.data.motion.assets import load_motion_assets
from skeletok.data.motion.retarget import retarget
from skeletok.data.motion.variants import evenly_spaced
from skeletok.data.sets import build as build_mod


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def relative_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    rel = np.einsum("tba,tbc->tac", a, b)
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None, help="at most this many frames per take")
    args = ap.parse_args()
    start = time.perf_counter()
    body = BodyModel.load()
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    mismatch = int((levels.parts_fine != levels.parts_dense[levels.fine_to_dense]).sum())
    edges = mesh_edges(body.faces)
    names = list(body.joint_names)
    dominant = body.skin_index[np.arange(body.num_vertices), body.skin_weight.argmax(1)]
    shapes = list(range(body.num_shapes))
    worst, worst_where, per_edge, pen_rows, rigid = 0.0, "", [], [], []
    for i, motion in enumerate(load_motion_assets()):
        motion = motion.resample(build_mod.DEFAULT_ASSET_FPS) if motion.fps != build_mod.DEFAULT_ASSET_FPS else motion
        motion = evenly_spaced(motion, args.frames)
        shape = shapes[i % len(shapes)]
        rest = body.vertices[shape].astype(np.float64)
        rest_len = np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=1)
        edge_max = np.zeros(len(edges))
        lows, lv_all = [], []
        scale = "auto"
        for s0 in range(0, motion.num_frames, build_mod.CHUNK):
            part = motion.frames(s0, min(s0 + build_mod.CHUNK, motion.num_frames))
            posed = retarget(part, body, shape=shape, scale=scale, mapping=build_mod._resolve_mapping(None, motion))
            scale = posed.scale
            v = posed.vertices
            for c in range(0, len(v), 256):
                vc = v[c:c + 256]
                ln = np.linalg.norm(vc[:, edges[:, 0]] - vc[:, edges[:, 1]], axis=-1)
                edge_max = np.maximum(edge_max, (ln / rest_len).max(0))
            lows.append(v[..., 2].min(1))
            lv_all.append(levels.levels(posed.joints, posed.vertices))
            if motion.name.startswith("deepmimic/"):
                rot = posed.global_rotations.astype(np.float64)
                rigid.append((motion.name, relative_angle(rot[:, names.index("Spine1")], rot[:, names.index("Head")]).max(),
                              relative_angle(rot[:, names.index("LeftLeg")], rot[:, names.index("LeftFoot")]).max()))
        lv = [np.concatenate(x) for x in zip(*lv_all)]
        low = np.concatenate(lows)
        if hasattr(build_mod, "_ground_lift"):
            lift = build_mod._ground_lift(low)
        else:
            lift = -min(float(np.nanmin(lv[2][..., 2])), float(lv[0][..., 2].min()))
        pen_rows.append((motion.name, float((low + lift).min())))
        per_edge.append(edge_max)
        e = int(edge_max.argmax())
        if edge_max[e] > worst:
            a, b = edges[e]
            worst = float(edge_max[e])
            worst_where = f"{motion.name} (shape {shape}), edge {a}-{b}: {names[dominant[a]]} / {names[dominant[b]]}"
    per_edge = np.max(per_edge, axis=0)
    print(f"parts mismatch (fine point part != dense parent's): {mismatch} of {len(levels.parts_fine)}")
    print(f"edge stretch: max {worst:.2f}x at {worst_where}; 99.9th pct of per-edge max {np.percentile(per_edge, 99.9):.2f}x;"
          f" edges over 2x: {int((per_edge > 2).sum())} of {len(edges)}")
    pens = np.array([p for _, p in pen_rows])
    print(f"floor: lowest vertex after grounding, worst take {1000 * pens.min():.1f} mm "
          f"({pen_rows[int(pens.argmin())][0]}), median {1000 * np.median(pens):.1f} mm, "
          f"takes below -1 mm: {int((pens < -1e-3).sum())} of {len(pens)}")
    if rigid:
        head = np.array([r[1] for r in rigid])
        foot = np.array([r[2] for r in rigid])
        print(f"deepmimic: max Head-vs-Spine1 angle per clip: min {head.min():.1f}, median {np.median(head):.1f} deg; "
              f"max LeftFoot-vs-LeftLeg angle per clip: min {foot.min():.1f}, median {np.median(foot):.1f} deg "
              f"({len(rigid)} clips)")
    from scipy.spatial.transform import Rotation

    def posed_stretch(turns: tuple[tuple[str, float], ...]) -> float:
        rot = np.broadcast_to(np.eye(3), (1, body.num_joints, 3, 3)).copy()
        for name, degrees in turns:
            sub = [body.joint_index(name)]
            sub += [k for k in range(body.num_joints) if k > sub[0] and _below(body.parents, k, sub[0])]
            rot[0, sub] = Rotation.from_euler("y", degrees, degrees=True).as_matrix()
        out = 0.0
        for shape in range(body.num_shapes):
            v = body.pose(rot, None, shape)[0][0]
            rest = body.vertices[shape].astype(np.float64)
            ratio = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1) / np.linalg.norm(
                rest[edges[:, 0]] - rest[edges[:, 1]], axis=1)
            out = max(out, float(ratio.max()))
        return out

    legs = [posed_stretch((("LeftUpLeg", -d), ("RightUpLeg", d))) for d in (45.0, 90.0)]
    arms = posed_stretch((("LeftArm", -120.0), ("RightArm", 120.0)))
    print(f"posed: straddle 45 deg {legs[0]:.1f}x, 90 deg {legs[1]:.1f}x; arms raised 120 deg {arms:.1f}x "
          "(worst edge stretch over the body shapes)")
    print(f"({time.perf_counter() - start:.0f} s)")


def _below(parents: np.ndarray, k: int, ancestor: int) -> bool:
    while k >= 0:
        if k == ancestor:
            return True
        k = int(parents[k])
    return False


if __name__ == "__main__":
    main()
