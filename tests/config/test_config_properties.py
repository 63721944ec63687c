"""Property: any mutation of the repo's stack files either plans, or fails with the stack file and a key named -
never a traceback, never an echoed secret (Hypothesis drives the mutations)."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, parse_stack_config
from tools.offline import ROOT, run_program, supply_missing_secrets
from tools.stack_files import read_stack_config

SECRET = "sk_live_property-test-secret-value"
# Each valid example runs the whole program (about a second); CI runs this many, a nightly run can ask for more.
EXAMPLES_PER_STACK = int(os.environ.get("RAPTORFLOW_PROPERTY_EXAMPLES", "25"))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20), st.floats(allow_nan=False),
    st.text(max_size=40), st.sampled_from(["", "0", "true", "primary", "../..", "goog", "a" * 300, "0 2 * * *"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=12), inner, max_size=3)),
                      max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw, stack: str):
    config, secret_keys = read_stack_config(stack, ROOT)
    supply_missing_secrets(stack, config, secret_keys)
    config = copy.deepcopy(config)
    for key in secret_keys:  # a recognisable secret everywhere a secret goes
        if config[key] == "[secret]":
            config[key] = SECRET
    own = {k: v for k, v in config.items() if k.startswith("raptorflow-dr:")}
    paths = _paths(own)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        parent: Any = config
        last = path[-1]
        try:  # an earlier mutation may have removed or replaced what this path runs through
            for part in path[:-1]:
                parent = parent[part]
            if action == "replace":
                parent[last] = draw(values)
            elif action == "delete":
                del parent[last]
            elif isinstance(parent[last], dict):
                parent[last][draw(st.text(min_size=1, max_size=10))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue
    return config, secret_keys


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_any_mutation_plans_or_names_file_and_key(stack, prod_plan):
    references = {"raptorflow/raptorflow-dr/prod": prod_plan.outputs}

    @settings(max_examples=EXAMPLES_PER_STACK, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(stack))
    def check(case):
        config, secret_keys = case
        try:
            parse_stack_config(stack, config, secret_keys)
        except ConfigError as exc:
            message = str(exc)
            assert f"invalid stack config in Pulumi.{stack}.yaml" in message
            # Each problem names its key: a `raptorflow-dr:` key, or the missing secret's `config set` command.
            assert "raptorflow-dr:" in message or "pulumi config set --secret" in message, message
            assert SECRET not in message, "a secret was echoed"
            return
        run_program(stack, config, secret_keys, references)

    check()
