"""Dendritic errors and weight updates against backprop (see microcircuit/analysis/error_vs_backprop.py)."""

from microcircuit.analysis.error_vs_backprop import main

raise SystemExit(main())
