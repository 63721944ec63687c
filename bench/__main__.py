"""`python -m bench` (or `make bench`): every benchmark, each against its own baseline in the same run."""

import sys

from bench import backup_throughput

sys.exit(backup_throughput.main(sys.argv[1:]))
