"""Settle time of the output against circuit depth, LE versus orig (see microcircuit/analysis/latency_vs_depth.py)."""

from microcircuit.analysis.latency_vs_depth import main

raise SystemExit(main())
