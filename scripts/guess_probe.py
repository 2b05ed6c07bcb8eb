"""Probe of issue 8 (session 14): how much do the guesses of hidden joints matter to HiPART's seen-part levels, and
does the prior guess them better than a Gaussian of the training poses?

A pose seeing ``level_min_visible``-16 joints is lifted with the points of its seen parts, which the level map
rebuilds from all 17 joints, the hidden ones guessed (by default: the joints of the prior's generated pose,
`recipes.hipart.centring.snap_levels`). For a trained run and a split, at a keypoint mask of 0.2 and crops of 0.2,
0.3 and 0.4 (one occlusion draw, seed 0, up to ``--max-samples`` evenly spaced samples), this prints for the poses
whose levels the lifter reads, with the run's HiPART lifter as exported:

- the hidden joints' error (px on a 1000-px image) of the prior's guess and of the Gaussian guess
  (`recipes.hipart.train_lifter.training_imputer` on the run's training poses, as ``guess=gaussian`` fits it);
- the seen parts' points' error (px) and the 3D error (mm) of those poses with the prior's guesses, with the Gaussian
  guesses, and with the *true* hidden joints (a bound on any better guess).

``--attach`` instead writes the Gaussian imputer into the run's ``lifter_hipart.pt`` (back it up first), so that
`skeletok hipart evaluate --run RUN` lifts with Gaussian guesses a lifter trained on the prior's: the
inference-only variant of recipes/hipart/README.md, "Hidden joints guessed by a Gaussian".

Run: ``python scripts/guess_probe.py RUN [--split val] [--max-samples 1000] [--attach]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's `recipes` package

from recipes.hipart.checkpoint import atomic_save  # noqa: E402
from recipes.hipart.centring import generate_centred  # noqa: E402
from recipes.hipart.data import make_dataset, occlusion_of, train_set_of  # noqa: E402
from recipes.hipart.inference import HiPART, root_relative  # noqa: E402
from recipes.hipart.level_gates import lifted_visibility  # noqa: E402
from recipes.hipart.presets import get_preset  # noqa: E402
from recipes.hipart.protocols import _collect, _subsample, sweep_occlusion  # noqa: E402
from recipes.hipart.train_lifter import mapped_levels, training_imputer  # noqa: E402
from skeletok.metrics import mpjpe  # noqa: E402

PX = 500.0  # normalised units -> px on a 1000-px-wide image (u = x / w * 2 - 1)
PROTOCOLS = (("mask", 0.2), ("crop", 0.2), ("crop", 0.3), ("crop", 0.4))


def fitted_imputer(data: str, run: Path):
    """The Gaussian imputer ``train-lifter guess=gaussian`` fits for the demo preset's training set of ``data``."""
    cfg = get_preset("lifter", "demo", [f"run_dir={run}", f"data={data}", "mode=hipart"])
    return training_imputer(train_set_of(cfg, data, occlusion=occlusion_of(cfg)))


@torch.inference_mode()
def probe(model: HiPART, imputer, split: str, max_samples: int) -> dict:
    data = Path(model.data_file)
    keep = _subsample(len(make_dataset(data, split=split)), max_samples)
    out = {}
    for protocol, ratio in PROTOCOLS:
        b = _collect(data, split, sweep_occlusion(protocol, ratio), 0, keep)
        x, vis, clean = b["sparse_2d"], b["sparse_visible"], b["sparse_2d_clean"]
        seen = vis.sum(1)
        rows = (seen >= model.level_min_visible) & (seen < 17)
        hidden = ~vis & rows[:, None]
        regressor = model.prior.joint_regressor  # the prior's guess: the joints of its generated pose, unsnapped
        fine = generate_centred(model.prior, model.tokenizer, x, vis, regressor=regressor)[1]
        prior_joints = torch.einsum("jk,bkc->bjc", regressor, fine)
        guesses = {"prior": torch.where(vis[..., None], x, prior_joints), "gaussian": imputer(x, vis),
                   "true": torch.where(vis[..., None], x, clean)}
        row = {"poses": int(rows.sum()), "hidden_joint_px": {k: float((guesses[k] - clean).norm(dim=-1)[hidden].mean()
                                                                      * PX) for k in ("prior", "gaussian")}}
        for name, joints in guesses.items():
            dense, fine = mapped_levels(model.prior, joints)
            if name == "prior":  # exactly the levels HiPART lifts
                torch.testing.assert_close((dense, fine), model.densify(x, vis)[:2], rtol=0, atol=1e-5)
            shown = lifted_visibility([x, dense, fine], [vis, None, None], model.gate, None, model.guess_min_logp,
                                      model.level_min_visible)[1:]
            pred = root_relative(model.lifter([x, dense, fine], [vis, *shown])) * 1000.0
            err = torch.cat(((dense - b["dense_2d"]).norm(dim=-1)[shown[0] & rows[:, None]],
                             (fine - b["fine_2d"]).norm(dim=-1)[shown[1] & rows[:, None]]))
            row[name] = {"shown_points_px": float(err.mean() * PX),
                         "mpjpe_mm": float(mpjpe(pred[rows], b["sparse_3d"][rows] * 1000.0))}
        out[f"{protocol}_{ratio}"] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--attach", action="store_true", help="write the Gaussian imputer into lifter_hipart.pt")
    args = parser.parse_args(argv)
    model = HiPART.load(args.run, device="cpu")
    if model.snap is None or model.snap[2] != 0:
        raise SystemExit("the probe needs a run whose levels are snapped with snap_detail=0 (the presets')")
    imputer = fitted_imputer(model.data_file, args.run)
    if args.attach:
        path = args.run / "lifter_hipart.pt"
        payload = torch.load(path, weights_only=True)
        payload["extra"]["joint_imputer"] = imputer.export()
        atomic_save(payload, path)
        print(f"wrote the Gaussian imputer into {path}")
        return 0
    print(json.dumps(probe(model, imputer, args.split, args.max_samples), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
