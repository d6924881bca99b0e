"""Devices: ``auto`` falls back to the CPU; on a CUDA device a run gives the CPU's numbers (``gpu`` tier)."""

from __future__ import annotations

import pytest

from tests.conftest import CIRCUITS, build

SHORT = ("parameters.t_pres=5", "protocol.0.epochs=2", "protocol.0.validate_every=0", "record=[]", "dtype=float64")


def test_auto_is_cuda_only_where_torch_sees_it():
    import torch

    from microcircuit.devices import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.gpu
def test_bars_on_cuda_gives_the_cpu_numbers():
    """Eager engine on both (the compiled engine is CPU-only), float64: every metric row agrees to 1e-9
    relative (cuBLAS and the CPU sum in different orders, so not bit for bit)."""
    from microcircuit.experiment import Experiment, RunOptions

    spec = build(CIRCUITS / "bars_le.yaml", SHORT)
    cpu = Experiment(spec, RunOptions(n_seeds=2, progress=False, engine="eager")).run()
    gpu = Experiment(spec, RunOptions(n_seeds=2, device="cuda", progress=False, engine="eager")).run()
    assert len(cpu.rows) == len(gpu.rows) > 0
    for a, b in zip(cpu.rows, gpu.rows, strict=True):
        assert a[:4] == b[:4]
        assert abs(a[4] - b[4]) <= 1e-9 * max(1.0, abs(a[4])), (a, b)
