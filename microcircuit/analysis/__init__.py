"""Analyses: the backprop reference, alignment measurements and the analysis programs.

Each program is a module with ``main(argv) -> int``, runnable as ``microcircuit analyse NAME``,
``python -m microcircuit.analysis.NAME`` or ``python analyses/NAME.py``.
"""

#: analysis program name -> module
ANALYSES: dict[str, str] = {
    "alignment_learning": "microcircuit.analysis.alignment_learning",
    "error_vs_backprop": "microcircuit.analysis.error_vs_backprop",
    "latency_vs_depth": "microcircuit.analysis.latency_vs_depth",
    "mimic": "microcircuit.analysis.mimic",
    "robustness": "microcircuit.analysis.robustness",
    "self_prediction": "microcircuit.analysis.self_prediction",
    "tpres_sweep": "microcircuit.analysis.tpres_sweep",
}

#: analysis program name -> one line on what it shows (``microcircuit analyse --help``; the programs
#: load torch, so their docstrings are not read for the listing)
SUMMARIES: dict[str, str] = {
    "alignment_learning": "learned top-down weights (fixed, hebbian_alignment, pal, tied) against (W^up)^T",
    "error_vs_backprop": "dendritic errors and weight updates against backprop, over nudging and training",
    "latency_vs_depth": "how long circuits of depth 1..8 need to answer a new input (LE against orig)",
    "mimic": "a student microcircuit learns a random teacher's map (Haider 2021, Fig. 5)",
    "robustness": "accuracy and alignment on an imperfect substrate (noise, delays, precision, ...)",
    "self_prediction": "learning the self-predicting state from random interneuron weights",
    "tpres_sweep": "bars accuracy against presentation time, LE against orig (Haider 2021, Fig. 3)",
}
