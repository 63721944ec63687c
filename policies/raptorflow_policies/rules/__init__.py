"""One module per rule: `POLICY`, its `WEAKENINGS` and, where needed, `COMPLIANT`."""
