import sys

from microcircuit.cli import main

sys.exit(main())
