"""skeletok.data: real motion capture on a real body mesh, coarsened into sparse/dense/fine levels."""
