"""skeletok.data: real motion capture on a real body mesh, coarsened into sparse/dense/fine levels.

Cameras (:mod:`~skeletok.data.cameras`), occlusion protocols (:mod:`~skeletok.data.occlusion`),
action labels (:mod:`~skeletok.data.actions`), the dataset builder (:mod:`~skeletok.data.build`),
its file format (:mod:`~skeletok.data.fileformat`), the torch Dataset
(:mod:`~skeletok.data.dataset`) and Human3.6M loaders (:mod:`~skeletok.data.h36m`).
"""

from skeletok.data.actions import action_from_name, assign_actions, pseudo_labels
from skeletok.data.build import build_dataset, build_default_dataset
from skeletok.data.cameras import Camera, h36m_like_rig, normalize_screen, random_cameras, unnormalize_screen
from skeletok.data.dataset import HierarchicalPoseDataset
from skeletok.data.fileformat import FORMAT_VERSION, load_dataset, save_dataset
from skeletok.data.occlusion import Occlusion, add_detector_noise, crop_box, mask_joints
from skeletok.data.paths import default_dataset_path

__all__ = [
    "Camera",
    "h36m_like_rig",
    "random_cameras",
    "normalize_screen",
    "unnormalize_screen",
    "Occlusion",
    "mask_joints",
    "crop_box",
    "add_detector_noise",
    "action_from_name",
    "assign_actions",
    "pseudo_labels",
    "FORMAT_VERSION",
    "load_dataset",
    "save_dataset",
    "build_dataset",
    "build_default_dataset",
    "default_dataset_path",
    "HierarchicalPoseDataset",
]
