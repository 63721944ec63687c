"""The pure core: facts and arithmetic that the program, the tools and the policy pack share.

Nothing here creates a resource or imports Pulumi: regions, the dotted-path lookup, schedule math
and the recovery model. The backup job keeps its own container and shares none of it.
"""
