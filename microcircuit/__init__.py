"""microcircuit: dendritic-error cortical microcircuits with Latent Equilibrium."""

__version__ = "0.1.0"
