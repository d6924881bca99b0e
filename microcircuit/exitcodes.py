"""Exit codes of the ``microcircuit`` command (documented in docs/reliability.md)."""

#: the command did what was asked
EXIT_OK = 0
#: the run diverged (the diagnosis is printed, the last good checkpoint kept), or another runtime failure
EXIT_FAILED = 1
#: a spec or usage error, or a resume refused because the run directory does not match its records
EXIT_SPEC = 2
#: an I/O failure (disk full, read-only, not a directory, permission, name too long): path and operation printed
EXIT_IO = 74
#: the run directory is being written by another process (it holds the directory's lock)
EXIT_LOCKED = 75
#: interrupted by SIGINT (Ctrl-C); the run directory can be resumed
EXIT_INT = 130
#: terminated by SIGTERM; the run directory can be resumed
EXIT_TERM = 143

__all__ = ["EXIT_FAILED", "EXIT_INT", "EXIT_IO", "EXIT_LOCKED", "EXIT_OK", "EXIT_SPEC", "EXIT_TERM"]
