"""Accuracy and backprop alignment on an imperfect substrate (see microcircuit/analysis/robustness.py)."""

from microcircuit.analysis.robustness import main

raise SystemExit(main())
