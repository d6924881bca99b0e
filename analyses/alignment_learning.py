"""Learned top-down weights against (W^up)^T (see microcircuit/analysis/alignment_learning.py)."""

from microcircuit.analysis.alignment_learning import main

raise SystemExit(main())
