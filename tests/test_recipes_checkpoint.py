"""Model files that cannot be used fail clearly: a truncated, half-written or random file, a torch file that is not
one of the recipes' exports, or an export that does not rebuild, loaded by `load_exported` (behind `HiPART.load`,
`evaluate` and `infer`) or `load_checkpoint` (``--resume``), raise a ``ValueError`` that names the file and what
to do, never a raw torch error."""

from __future__ import annotations

import os

import pytest
import torch

from recipes.hipart.checkpoint import export_model, load_checkpoint, load_exported, retrain_hint, save_checkpoint
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior

KWARGS = {"level_points": (17, 48, 96), "dim": 16, "depth": 1}


def _export(path, **extra):
    model = HierarchicalLifter(**KWARGS)
    return export_model(path, model, kind="HierarchicalLifter", kwargs=KWARGS, config={},
                        extra={"mode": "hipart", **extra})


def _corruptions(good: bytes) -> dict:
    return {
        "random bytes": os.urandom(4096),
        "empty": b"",
        "half-written": good[: len(good) // 2],
        "first bytes only": good[:100],
        "text": b"not a model\n",
    }


def test_unreadable_model_files_name_the_file_and_the_fix(tmp_path):
    path = _export(tmp_path / "lifter_hipart.pt")
    good = path.read_bytes()
    for name, content in _corruptions(good).items():
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_exported(path, HierarchicalLifter)
        text = str(err.value)
        assert str(path) in text, name
        assert "truncated, corrupted or not written by skeletok's HiPART recipes" in text, name
        assert f"`skeletok hipart train-lifter mode=hipart run_dir={tmp_path}`" in text, name
        assert "weights_only" not in text and "\n" not in text, name  # torch's advice and tracebacks stay out


def test_foreign_torch_files_and_mismatched_exports_are_refused(tmp_path):
    path = tmp_path / "prior.pt"
    cases = {
        "a pickled module": torch.nn.Linear(2, 2),
        "a bare state dict": torch.nn.Linear(2, 2).state_dict(),
        "another program's dict": {"weights": torch.zeros(3)},
        "a tensor": torch.zeros(3),
    }
    for name, obj in cases.items():
        torch.save(obj, path)
        with pytest.raises(ValueError, match=r"prior\.pt.*train-prior run_dir=") as err:
            load_exported(path, HierarchicalARPrior)
        assert "Traceback" not in str(err.value), name
    lifter = tmp_path / "lifter_oracle.pt"
    _export(lifter)
    payload = torch.load(lifter, weights_only=True)
    payload["state_dict"] = {k: v[..., :1] for k, v in payload["state_dict"].items()}
    torch.save(payload, lifter)
    with pytest.raises(ValueError, match=r"does not rebuild into a HierarchicalLifter \(RuntimeError.*mode=oracle"):
        load_exported(lifter, HierarchicalLifter)
    payload["kwargs"] = {**KWARGS, "no_such_argument": 1}
    torch.save(payload, lifter)
    with pytest.raises(ValueError, match=r"does not rebuild into a HierarchicalLifter \(TypeError"):
        load_exported(lifter, HierarchicalLifter)
    _export(lifter)
    payload = torch.load(lifter, weights_only=True)
    del payload["extra"]["mode"]
    torch.save(payload, lifter)
    with pytest.raises(ValueError, match=r"has no \['mode'\]"):
        load_exported(lifter, HierarchicalLifter)


def test_the_hint_offers_resume_only_when_the_stage_has_a_checkpoint(tmp_path):
    path = _export(tmp_path / "lifter_sparse_only.pt")
    assert "--resume" not in retrain_hint(path, "HierarchicalLifter")
    model = HierarchicalLifter(**KWARGS)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    ckpt = save_checkpoint(tmp_path / "lifter_sparse_only" / "checkpoint.pt", model=model, optimizer=opt,
                           scheduler=sched, step=3, epoch=0, config={})
    path.write_bytes(b"\0" * 10)
    with pytest.raises(ValueError) as err:
        load_exported(path, HierarchicalLifter)
    assert "train-lifter mode=sparse_only" in str(err.value)
    assert f"from its resume checkpoint {ckpt} by adding `--resume`" in str(err.value)
    # a broken resume checkpoint itself: start again without --resume
    good = ckpt.read_bytes()
    for name, content in _corruptions(good).items():
        ckpt.write_bytes(content)
        with pytest.raises(ValueError, match=r"cannot read the resume checkpoint .*without --resume"):
            load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched)
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "step": 1, "epoch": 0, "config": {},
                "rng": {}}, ckpt)
    with pytest.raises(ValueError, match=r"does not fit this run's model .*without --resume"):
        load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched)
