"""The scheduled database backup job: pg_dump -> checksummed, create-only upload to GCS -> manifest.

Runs as `python -m backup_job` in its own container (see Dockerfile); of the Pulumi
program's code it shares only core.contracts (its subcommands, exit codes and log
line, which the program's jobs and alerts use; the image copies core/contracts.py and
the type-token table it imports). Subcommands: core.contracts.Command.
"""
