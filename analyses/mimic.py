"""The mimic experiment, Haider 2021 Fig. 5 (see microcircuit/analysis/mimic.py)."""

from microcircuit.analysis.mimic import main

raise SystemExit(main())
