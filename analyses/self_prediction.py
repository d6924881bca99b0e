"""Learning the self-predicting state, LE versus orig (see microcircuit/analysis/self_prediction.py)."""

from microcircuit.analysis.self_prediction import main

raise SystemExit(main())
