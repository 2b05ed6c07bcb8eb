"""Motion capture in, one container out: readers, joint mappings, retargeting onto the body, variants.

- :mod:`~skeletok.data.motion.core`: the :class:`~skeletok.data.motion.core.Motion` type and rotation helpers;
- :mod:`~skeletok.data.motion.read`: :func:`~skeletok.data.motion.read.read_motion`, dispatching on the extension to
  :mod:`~skeletok.data.motion.bvh` (its text: :mod:`~skeletok.data.motion.bvh_file`),
  :mod:`~skeletok.data.motion.asf_amc` (its ASF skeleton: :mod:`~skeletok.data.motion.asf`),
  :mod:`~skeletok.data.motion.arrays` (``.npy``/``.npz`` joint positions) and :mod:`~skeletok.data.motion.deepmimic`;
- :mod:`~skeletok.data.motion.presets` and :mod:`~skeletok.data.motion.mapping`: the canonical landmarks, preset
  tables, joint mappings onto them (name rules, detection, JSON);
- :mod:`~skeletok.data.motion.upright`: the up axis of a file, from its body;
- :mod:`~skeletok.data.motion.retarget`: joint positions -> bone rotations of the body rig;
- :mod:`~skeletok.data.motion.variants`: mirrored takes and evenly spaced choices;
- :mod:`~skeletok.data.motion.assets`: the committed real sequences.

Modules of this package import each other by their full module path (``skeletok.data.motion.core``), never from
this ``__init__``, which only re-exports the two names most code needs.
"""

from skeletok.data.motion.core import Motion
from skeletok.data.motion.read import read_motion

__all__ = ["Motion", "read_motion"]
