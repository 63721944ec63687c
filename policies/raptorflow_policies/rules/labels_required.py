"""Labelling rule (advisory): every labelled resource says its environment and who manages it."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import ADVISORY, DELETE, Label, Weakening, resource_policy

CONFIG = {
    "requiredLabels": {
        "type": "array", "items": {"type": "string"}, "description": "Labels every labelled resource carries.",
        "default": [Label.ENVIRONMENT.value, Label.MANAGED_BY.value],
    }
}


def _check(args, violate):
    # Monitoring resources keep their labels in `userLabels` (a channel's `labels` are its settings).
    field = "userLabels" if "userLabels" in args.props else "labels" if "labels" in args.props else None
    if field is None or not args.resource_type.startswith("gcp:"):
        return
    present = args.props.get(field) or {}
    missing = [label for label in args.get_config().get("requiredLabels", CONFIG["requiredLabels"]["default"])
               if label not in present]
    if missing:
        violate(f"{args.name} lacks the labels {', '.join(missing)}")


POLICY = resource_policy(
    "raptorflow-labels-required",
    f"Every labelled resource carries `{Label.ENVIRONMENT}` and `{Label.MANAGED_BY}` labels.",
    "environment-label",
    Severity.LOW,
    "pass the stack's labels (config `labels`) to the resource",
    _check,
    enforcement=ADVISORY,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("prod", f"db-dumps-bucket lacks the labels {Label.ENVIRONMENT}", "db-dumps-bucket",
              {f"labels.{Label.ENVIRONMENT}": DELETE}),
]
