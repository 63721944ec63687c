"""`python -m backup_job`: see backup_job.cli.

The SIGTERM handler is installed first, from a module of the standard library alone: loading the client
libraries takes a second or more, and a task stopped then still ends with its JSON line and exit 10. (As a
container's first process, the job would otherwise ignore that SIGTERM and be killed ten seconds later.)
"""

import sys

from backup_job import errors, heap

errors.handle_sigterm()
_command = sys.argv[1] if sys.argv[1:2] and sys.argv[1] in errors.COMMANDS else None
if _command == errors.Command.BACKUP:
    heap.tune()  # before the client libraries allocate: backup_job.heap says why, and why only here
try:
    from backup_job.cli import main

    _code = main()
except errors.Terminated:
    _code = errors.end_run(_command, errors.ExitCode.TERMINATED,
                           f"{_command or 'the job'} stopped by SIGTERM while starting; nothing was done")
except errors.JobError as exc:  # a setting read while the modules load (BACKUP_STORAGE_TIMEOUT_SECONDS, ...)
    _code = errors.end_run(_command, exc.code, str(exc))
sys.exit(_code)
