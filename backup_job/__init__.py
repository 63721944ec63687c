"""The scheduled database backup job: pg_dump -> checksummed, create-only upload to GCS -> manifest.

Runs as `python -m backup_job` in its own container (see Dockerfile); shares no
code with the Pulumi program. Subcommands: `backup`, `restore-check`, `list`.
"""
