"""Analyses: the backprop reference, alignment measurements and the analysis programs.

Each program is a module with ``main(argv) -> int``, runnable as ``microcircuit analyse NAME``,
``python -m microcircuit.analysis.NAME`` or ``python analyses/NAME.py``.
"""

#: analysis program name -> module
ANALYSES: dict[str, str] = {
    "error_vs_backprop": "microcircuit.analysis.error_vs_backprop",
    "latency_vs_depth": "microcircuit.analysis.latency_vs_depth",
    "mimic": "microcircuit.analysis.mimic",
    "robustness": "microcircuit.analysis.robustness",
    "self_prediction": "microcircuit.analysis.self_prediction",
    "tpres_sweep": "microcircuit.analysis.tpres_sweep",
}
