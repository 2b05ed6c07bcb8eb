"""skeletok.data: real motion capture on a real body mesh, coarsened into sparse/dense/fine levels.

Motion files and joint mappings (:mod:`~skeletok.data.motion`, :mod:`~skeletok.data.mapping`,
:mod:`~skeletok.data.motion_assets`), the skinned body (:mod:`~skeletok.data.body`), retargeting
(:mod:`~skeletok.data.retarget`), the three levels (:mod:`~skeletok.data.levels`), cameras
(:mod:`~skeletok.data.cameras`), occlusion protocols (:mod:`~skeletok.data.occlusion`), action
labels (:mod:`~skeletok.data.actions`), the dataset file (:mod:`~skeletok.data.fileformat`) and
its builder (:mod:`~skeletok.data.build`), the torch Dataset (:mod:`~skeletok.data.dataset`),
Human3.6M loaders (:mod:`~skeletok.data.h36m`) and pictures (:mod:`~skeletok.data.show`).
"""

from skeletok.data.actions import action_from_name, assign_actions, pseudo_labels
from skeletok.data.body import BodyModel
from skeletok.data.build import build_dataset, build_default_dataset
from skeletok.data.cameras import Camera, h36m_like_rig, normalize_screen, random_cameras, unnormalize_screen
from skeletok.data.dataset import HierarchicalPoseDataset
from skeletok.data.fileformat import FORMAT_VERSION, load_dataset, save_dataset
from skeletok.data.h36m import load_h36m_cameras, h36m_cameras, h36m_to_dataset, hierarchy_from_smpl, load_h36m_2d, load_h36m_3d
from skeletok.data.levels import BodyLevels, build_levels
from skeletok.data.mapping import JointMapping, get_mapping
from skeletok.data.motion import Motion, read_motion
from skeletok.data.motion_assets import load_motion_assets
from skeletok.data.occlusion import Occlusion, add_detector_noise, crop_box, mask_joints
from skeletok.data.paths import default_dataset_path
from skeletok.data.retarget import retarget
from skeletok.data.show import show_frame

__all__ = [
    "Motion",
    "read_motion",
    "JointMapping",
    "get_mapping",
    "load_motion_assets",
    "BodyModel",
    "retarget",
    "BodyLevels",
    "build_levels",
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
    "h36m_cameras",
    "load_h36m_cameras",
    "load_h36m_3d",
    "load_h36m_2d",
    "hierarchy_from_smpl",
    "h36m_to_dataset",
    "show_frame",
]
