"""How the body is seen: pinhole cameras and rigs, occlusion protocols, Human3.6M calibration.

- :mod:`~skeletok.data.views.cameras`: :class:`~skeletok.data.views.cameras.Camera`, rigs, screen normalisation;
- :mod:`~skeletok.data.views.occlusion`: masking, crops and detector noise for training and evaluation;
- :mod:`~skeletok.data.views.h36m_calibration`: the cameras of a Human3.6M copy, from its calibration JSON.

Modules of this package import each other by their full module path, never from this ``__init__``.
"""

from skeletok.data.views.cameras import Camera, h36m_like_rig, normalize_screen, random_cameras, unnormalize_screen
from skeletok.data.views.occlusion import Occlusion

__all__ = ["Camera", "h36m_like_rig", "random_cameras", "normalize_screen", "unnormalize_screen", "Occlusion"]
