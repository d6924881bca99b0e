"""Bars accuracy against presentation time, LE versus orig (see microcircuit/analysis/tpres_sweep.py)."""

from microcircuit.analysis.tpres_sweep import main

raise SystemExit(main())
