"""Datasets: the file format, the builder, splits and actions, the torch Dataset, Human3.6M, pictures.

- :mod:`~skeletok.data.sets.fileformat`: the dataset ``.npz`` (save, load, validate);
- :mod:`~skeletok.data.sets.build`: motions -> a dataset file; the default dataset from the committed assets;
- :mod:`~skeletok.data.sets.splits` and :mod:`~skeletok.data.sets.actions`: train/val/test by take, action labels;
- :mod:`~skeletok.data.sets.dataset`: :class:`~skeletok.data.sets.dataset.HierarchicalPoseDataset` (torch);
- :mod:`~skeletok.data.sets.h36m`: Human3.6M (VideoPose3D files) -> a dataset file;
- :mod:`~skeletok.data.sets.show`: one frame drawn in 2D and 3D;
- :mod:`~skeletok.data.sets.paths`: where the default dataset is cached.

Modules of this package import each other by their full module path, never from this ``__init__``.
"""

from skeletok.data.sets.build import build_dataset, build_default_dataset
from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import FORMAT_VERSION, load_dataset, save_dataset

__all__ = ["FORMAT_VERSION", "load_dataset", "save_dataset", "build_dataset", "build_default_dataset",
           "HierarchicalPoseDataset"]
