"""``reduce: mean_abs`` records mean |x| over neurons, the measure of the apical_norm metric, on both engines."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import CIRCUITS, build

PROTOCOL = "protocol=[{phase: train, data: train, teacher: true, plastic: all, t_pres: 10}]"


def recorded(reduce: str, engine: str) -> np.ndarray:
    from microcircuit.experiment import Experiment, RunOptions

    spec = build(CIRCUITS / "bars_le.yaml", (PROTOCOL, "dtype=float64",
                                             f"record=[{{var: pyr_1.apical.v, every: 5, reduce: {reduce}}}]"))
    experiment = Experiment(spec, RunOptions(n_seeds=2, progress=False, engine=engine))
    experiment.run()
    return experiment.recorder.take_chunk()["pyr_1.apical.v"]


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_mean_abs_is_the_mean_of_the_absolute_values(engine):
    per_neuron, reduced = recorded("none", engine), recorded("mean_abs", engine)
    assert reduced.shape == per_neuron.shape[:-1]
    # recordings are stored in float32
    np.testing.assert_allclose(reduced, np.abs(per_neuron).mean(axis=-1), rtol=1e-6, atol=1e-9)
