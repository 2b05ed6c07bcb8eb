"""skeletok.data: real motion capture on a real body mesh, coarsened into sparse/dense/fine levels.

Four subpackages, one per stage, each importing only from the stages before it (no import circle):

- :mod:`~skeletok.data.motion`: motion files in one container (:mod:`~skeletok.data.motion.core`, readers,
  :mod:`~skeletok.data.motion.read`), joint mappings (:mod:`~skeletok.data.motion.mapping`), retargeting onto the
  body (:mod:`~skeletok.data.motion.retarget`), variants and the committed sequences
  (:mod:`~skeletok.data.motion.assets`);
- :mod:`~skeletok.data.body`: the skinned body (:mod:`~skeletok.data.body.model`), HEM coarsening
  (:mod:`~skeletok.data.body.hem`) and the three levels (:mod:`~skeletok.data.body.levels`);
- :mod:`~skeletok.data.views`: cameras (:mod:`~skeletok.data.views.cameras`), occlusion protocols
  (:mod:`~skeletok.data.views.occlusion`) and Human3.6M calibration;
- :mod:`~skeletok.data.sets`: the dataset file (:mod:`~skeletok.data.sets.fileformat`) and its builder
  (:mod:`~skeletok.data.sets.build`), splits and action labels, the torch Dataset
  (:mod:`~skeletok.data.sets.dataset`), Human3.6M loaders (:mod:`~skeletok.data.sets.h36m`) and pictures
  (:mod:`~skeletok.data.sets.show`).

:mod:`~skeletok.data.cli` is the ``skeletok data`` command group. The names below are re-exported here.
"""

from skeletok.data.body.levels import BodyLevels, build_levels
from skeletok.data.body.model import BodyModel
from skeletok.data.motion.assets import load_motion_assets
from skeletok.data.motion.core import Motion
from skeletok.data.motion.mapping import JointMapping, get_mapping
from skeletok.data.motion.read import read_motion
from skeletok.data.motion.retarget import retarget
from skeletok.data.sets.actions import action_from_name, assign_actions, pseudo_labels
from skeletok.data.sets.build import build_dataset, build_default_dataset
from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import FORMAT_VERSION, load_dataset, save_dataset
from skeletok.data.sets.h36m import (h36m_cameras, h36m_to_dataset, hierarchy_from_smpl, load_h36m_2d,
                                     load_h36m_3d, load_h36m_cameras)
from skeletok.data.sets.paths import default_dataset_path
from skeletok.data.sets.show import show_frame
from skeletok.data.views.cameras import Camera, h36m_like_rig, normalize_screen, random_cameras, unnormalize_screen
from skeletok.data.views.occlusion import Occlusion, add_detector_noise, crop_box, mask_joints

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
