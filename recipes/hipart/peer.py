"""Same-run speed comparison with DiffPose (``skeletok hipart bench --peer DIR``).

``DIR`` is an exported snapshot of the public GONGJIA0208/Diffpose repository (MIT), e.g. ``git archive`` of a
clone into a temporary folder. Nothing of DiffPose is shipped or vendored here: its own modules are imported from
``DIR`` at run time (``models.gcndiff.GCNdiff``, ``models.gcnpose.GCNpose``, ``common.graph_utils
.adj_mx_from_edges``, ``common.utils_diff.get_beta_schedule`` / ``generalized_steps`` and
``configs/human36m_diffpose_uvxyz_cpn.yml``; PyYAML is needed to read the config).

DiffPose is timed on its Human3.6M-CPN test path as its runner does it: GCNpose, then 2 DDIM steps (of 24) of
GCNdiff, 1 sample, eta 0, fp32, random weights (speed does not depend on them). skeletok is timed through
`recipes.hipart.inference.HiPART.predict`. Both get the same input, one after the other in every round, so the
ratio of their frames/s is meaningful even though a shared machine's speed varies ~2x between runs. This is the
comparison of ``shared/bench/peer_speed.py``, inside the bench command.
"""

from __future__ import annotations

import contextlib
import importlib.util
import statistics
import sys
import types
from pathlib import Path
from typing import Callable

import torch

from .timing import throughput

__all__ = ["H36M_EDGES", "load_diffpose", "compare"]

# Human3.6M-17 bones, in DiffPose's joint order (the order skeletok's H36M_17 uses as well).
H36M_EDGES = [[0, 1], [1, 2], [2, 3], [0, 4], [4, 5], [5, 6], [0, 7], [7, 8], [8, 9], [9, 10],
              [8, 11], [11, 12], [12, 13], [8, 14], [14, 15], [15, 16]]
_CONFIG = "configs/human36m_diffpose_uvxyz_cpn.yml"
_PEER_PACKAGES = ("models", "common")


def _no_cuda(self, *args, **kwargs):
    return self


@contextlib.contextmanager
def _cpu_shims():
    """DiffPose calls ``.cuda()`` unconditionally and imports ``lib2to3`` (gone from Python 3.13): on CPU, make
    ``.cuda()`` a no-op and stub ``lib2to3.refactor`` if it is missing, only while DiffPose code runs."""
    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda, torch.nn.Module.cuda = _no_cuda, _no_cuda
    stubbed = []
    if importlib.util.find_spec("lib2to3") is None:
        stub = types.ModuleType("lib2to3")
        refactor = types.ModuleType("lib2to3.refactor")
        refactor.get_fixers_from_package = None
        stub.refactor = refactor
        for name, module in (("lib2to3", stub), ("lib2to3.refactor", refactor)):
            if name not in sys.modules:
                sys.modules[name] = module
                stubbed.append(name)
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved
        for name in stubbed:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def _imported_from(root: Path):
    """Import DiffPose's top-level ``models`` and ``common`` from ``root`` without leaving them in ``sys.modules``
    (their names are generic; another package of the same name must neither be shadowed nor be picked up)."""
    def ours(name: str) -> bool:
        return name.split(".")[0] in _PEER_PACKAGES

    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if ours(name)}
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def load_diffpose(peer_dir: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """DiffPose's H36M-CPN test path with random weights, as ``fn(x2d (b, 17, 2)) -> joints (b, 17, 3)``.

    Raises:
        FileNotFoundError: ``peer_dir`` is not a DiffPose snapshot (its config file is missing).
        ImportError: PyYAML is not installed.
    """
    root = Path(peer_dir).resolve()
    if not (root / _CONFIG).is_file():
        raise FileNotFoundError(f"{root / _CONFIG} not found: --peer takes an exported snapshot of the "
                                "GONGJIA0208/Diffpose repository (e.g. `git archive` of a clone)")
    try:
        import yaml
    except ImportError as err:  # pragma: no cover - PyYAML comes with the dev extras (mkdocs)
        raise ImportError("--peer reads DiffPose's YAML config: pip install pyyaml") from err

    def namespace(d):
        return types.SimpleNamespace(**{k: namespace(v) if isinstance(v, dict) else v for k, v in d.items()})

    with _cpu_shims(), _imported_from(root):
        from common.graph_utils import adj_mx_from_edges
        from common.utils_diff import generalized_steps, get_beta_schedule
        from models.gcndiff import GCNdiff
        from models.gcnpose import GCNpose

        cfg = namespace(yaml.safe_load((root / _CONFIG).read_text()))
        adj = adj_mx_from_edges(num_pts=17, edges=torch.tensor(H36M_EDGES), sparse=False)
        diff = GCNdiff(adj, cfg).eval()
        cfg.model.coords_dim = [2, 3]
        pose = GCNpose(adj, cfg).eval()
    betas = torch.from_numpy(get_beta_schedule(beta_schedule="linear", beta_start=1e-4, beta_end=1e-3,
                                               num_diffusion_timesteps=51)).float()
    seq = range(0, 24, 24 // 2)
    mask = torch.ones(1, 1, 17, dtype=torch.bool)

    def diffpose(x2d: torch.Tensor) -> torch.Tensor:
        with _cpu_shims():
            xyz = pose(x2d, mask)
            xyz = xyz - xyz[:, :1]
            uvxyz = torch.cat([x2d, xyz], 2)
            out = generalized_steps(uvxyz, mask, seq, diff, betas, eta=0.0)[0][-1]
        return out[..., 2:]

    return diffpose


@torch.inference_mode()
def compare(skeletok: Callable[[torch.Tensor], object], peer: Callable[[torch.Tensor], object], *,
            batch_sizes=(1, 256), rounds: int = 5, min_time_s: float = 1.0, seed: int = 0) -> dict:
    """Interleaved frames/s of ``skeletok`` and ``peer`` on the same ``(b, 17, 2)`` input, ``rounds`` times per
    batch size; returns per batch size the frames/s of every round and the median (min, max) ratio
    skeletok / peer."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    gen = torch.Generator().manual_seed(seed)
    result = {}
    for b in batch_sizes:
        x = torch.rand(b, 17, 2, generator=gen) - 0.5
        peer_fps, ours_fps = [], []
        for _ in range(rounds):
            peer_fps.append(throughput(lambda: peer(x), items=b, min_time_s=min_time_s, warmup=1))
            ours_fps.append(throughput(lambda: skeletok(x), items=b, min_time_s=min_time_s, warmup=1))
        ratios = [o / p for o, p in zip(ours_fps, peer_fps)]
        result[f"batch_{b}"] = {"peer_fps": peer_fps, "skeletok_fps": ours_fps, "ratios": ratios,
                                "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
                                "max_ratio": max(ratios)}
    return result
