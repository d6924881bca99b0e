"""The circuits shipped with the package, as ``microcircuit.circuits`` (read them with :mod:`microcircuit.shipped`)."""
