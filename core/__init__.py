"""The pure core: facts and arithmetic that the program, the tools and the policy pack share.

Nothing here creates a resource or imports Pulumi: regions, the dotted-path lookup, schedule math,
the recovery model, and the contracts between the layers (core/contracts.py). The backup job keeps its
own container and shares only the contracts: its subcommands, exit codes and log line.
"""
