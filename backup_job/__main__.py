"""`python -m backup_job`: see backup_job.cli."""

import sys

from backup_job.cli import main

sys.exit(main())
