"""skeletok: PyTorch building blocks for skeletal pose tokenizers and autoregressive priors.

Shape notation used throughout: ``b`` batch, ``t`` time, ``j`` points, ``c`` coordinates, ``p`` parts,
``r`` dense tokens per part, ``d`` features, ``k`` codebook entries. See the Concepts page of the docs for
the levels, the token layout, units and coordinate frames.
"""

from skeletok.alignment import global_alignment_loss, local_alignment_loss
from skeletok.codebook import HierarchicalCodebook
from skeletok.errors import InputFileError, JointMappingError, KeypointFileError, MotionFileError, MotionWarning
from skeletok.gcsab import GCSAB
from skeletok.lifter import HierarchicalLifter
from skeletok.lsab import LSAB
from skeletok.metrics import auc, mean_error_2d, mpjpe, n_mpjpe, p_mpjpe, pck3d, procrustes_align, scale_align
from skeletok.mixer import PoseMixerDecoder, PoseMixerEncoder
from skeletok.prior import HierarchicalARPrior
from skeletok.skeleton import COCO_17, H36M_17, Skeleton, coco17_to_h36m17
from skeletok.tokenizer import HierarchicalPoseTokenizer

__version__ = "0.1.0"

__all__ = [
    "Skeleton",
    "H36M_17",
    "COCO_17",
    "coco17_to_h36m17",
    "mpjpe",
    "p_mpjpe",
    "n_mpjpe",
    "mean_error_2d",
    "pck3d",
    "auc",
    "procrustes_align",
    "scale_align",
    "PoseMixerEncoder",
    "PoseMixerDecoder",
    "HierarchicalCodebook",
    "local_alignment_loss",
    "global_alignment_loss",
    "HierarchicalPoseTokenizer",
    "LSAB",
    "GCSAB",
    "HierarchicalARPrior",
    "HierarchicalLifter",
    "InputFileError",
    "MotionFileError",
    "KeypointFileError",
    "JointMappingError",
    "MotionWarning",
]
