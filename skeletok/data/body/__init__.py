"""The body: the skinned mesh, its coarsening by heavy-edge matching (HEM) and the three pose levels.

- :mod:`~skeletok.data.body.model`: :class:`~skeletok.data.body.model.BodyModel`, the skinned body (numpy);
- :mod:`~skeletok.data.body.skinning`: smoothing of skinning weights and the edge stretch that measures tearing;
- :mod:`~skeletok.data.body.mesh_graph` and :mod:`~skeletok.data.body.matching`: the mesh graph and matchings;
- :mod:`~skeletok.data.body.hem`: HEM coarsening of a mesh;
- :mod:`~skeletok.data.body.levels`: the sparse/dense/fine levels of the body
  (:class:`~skeletok.data.body.levels.BodyLevels`);
- :mod:`~skeletok.data.body.assets`: rebuilds the committed body asset (build time only).

Modules of this package import each other by their full module path, never from this ``__init__``.
"""

from skeletok.data.body.levels import BodyLevels, build_levels
from skeletok.data.body.model import BodyModel

__all__ = ["BodyModel", "BodyLevels", "build_levels"]
