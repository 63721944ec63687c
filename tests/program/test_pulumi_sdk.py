"""The Pulumi SDK behaviour the offline plan relies on, pinned: every internal components/pulumi_internals.py uses
exists with the signature and fields it uses, a small program's options come through the whole offline path, the
installed SDK is in the supported range, and no other module reaches for the SDK's internals.

`make test-sdk-newest` runs this module (with the rest of the offline-plan tests) against the newest SDK that
requirements.txt allows: a failure here names what an upgrade changed."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import importlib.metadata
import inspect
import re
import threading
from pathlib import Path
from typing import Any

import pulumi
import pytest
from packaging.specifiers import SpecifierSet
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc
from pulumi.runtime import stack as runtime_stack
from pulumi.runtime.proto import alias_pb2, resource_pb2

from components import pulumi_internals
from tests.project_files import project_modules
from tools.offline import ROOT, SECRET_SIG, SIG_KEY, STACK_REFERENCE_TYPE, Plan, is_secret, record_resources

ADAPTER = Path(pulumi_internals.__file__).resolve()
# The modules of the SDK that are no public API; only the adapter (and this test, which pins them) may use them.
INTERNAL_MODULES = ("pulumi.runtime.sync_await", "pulumi.runtime.stack", "pulumi.runtime.mocks", "pulumi.runtime.rpc",
                    "pulumi.runtime.config", "pulumi.runtime.settings", "pulumi.runtime.rpc_manager",
                    "pulumi.runtime.proto", "pulumi_policy.deserialize")
# Fields of the engine's request protobufs (camelCase, unlike any attribute of this project's own objects).
REQUEST_FIELDS = ("importId", "ignoreChanges", "retainOnDelete", "WhichOneof", "parentUrn", "noParent", "aliasSpecs",
                  "propertyDependencies", "deleteBeforeReplace", "additionalSecretOutputs", "replaceOnChanges")

PROJECT_KEY = "sdkpin:token"
OTHER_STACK = "org/proj/other"


# ---------------------------------------------------------------------------- the supported range


def _requirement(name: str) -> str:
    """The version specifier requirements.txt gives `name`."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        found = re.fullmatch(rf"{re.escape(name)}\s*([<>=!~][^#]*?)\s*(#.*)?", line.strip())
        if found:
            return found[1].replace(" ", "")
    raise AssertionError(f"requirements.txt does not pin {name}")


def test_the_adapter_supports_the_range_requirements_txt_pins():
    assert SpecifierSet(pulumi_internals.SUPPORTED_PULUMI) == SpecifierSet(_requirement("pulumi")), (
        "components/pulumi_internals.py names another SDK range than requirements.txt: check the adapter against the "
        "new range, then update SUPPORTED_PULUMI and its docstring")
    assert pulumi_internals.SUPPORTED_PULUMI in (pulumi_internals.__doc__ or "")


def test_the_installed_sdk_is_in_the_supported_range():
    installed = importlib.metadata.version("pulumi")
    assert installed in SpecifierSet(pulumi_internals.SUPPORTED_PULUMI), (
        f"pulumi {installed} is outside {pulumi_internals.SUPPORTED_PULUMI}, the range the adapter is written for")


# ---------------------------------------------------------------------------- the internals, by name


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_mock_monitor_has_the_methods_the_recording_monitor_overrides():
    monitor = runtime_mocks.MockMonitor
    assert _parameters(monitor.__init__) == ["self", "mocks"]
    assert _parameters(monitor.RegisterResource) == ["self", "request"]
    assert _parameters(monitor.ReadResource) == ["self", "request"]
    assert _parameters(monitor.make_urn) == ["self", "parent", "type_", "name"]
    assert issubclass(pulumi_internals.RecordingMonitor, monitor)


def test_set_mocks_takes_a_monitor_and_the_stack_settings():
    assert pulumi.runtime.set_mocks is runtime_mocks.set_mocks
    assert {"mocks", "project", "stack", "preview", "monitor"} <= set(_parameters(pulumi.runtime.set_mocks))


def test_the_public_testing_api_the_plan_uses_is_there():
    assert _parameters(pulumi.runtime.test) == ["fn"]
    assert {"typ", "name", "inputs", "resource_id", "custom"} <= set(_parameters(pulumi.runtime.MockResourceArgs))
    assert {"token", "args"} <= set(_parameters(pulumi.runtime.MockCallArgs))
    assert _parameters(pulumi.runtime.Mocks.register_transform) == ["self", "transform"]
    assert _parameters(pulumi.runtime.set_all_config) == ["config", "secret_keys"]
    for name in ("get_config_env", "is_config_secret", "get_root_resource", "register_resource_transform"):
        assert name in pulumi.runtime.__all__, f"pulumi.runtime no longer exports {name}"
    assert inspect.iscoroutinefunction(pulumi.Output.is_secret)


def test_deserialize_properties_takes_a_struct():
    assert _parameters(rpc.deserialize_properties)[0] == "props_struct"


def test_the_config_map_is_a_context_variable_holding_a_dict():
    assert isinstance(runtime_config.CONFIG, contextvars.ContextVar)

    def read() -> dict[str, Any]:
        pulumi.runtime.set_all_config({PROJECT_KEY: "x"}, [PROJECT_KEY])
        return pulumi_internals.explicit_config()

    assert contextvars.Context().run(read) == {PROJECT_KEY: "x"}


def test_the_root_stack_keeps_its_exports_in_outputs():
    assert "outputs" in runtime_stack.Stack.__annotations__
    assert callable(runtime_stack.Stack.output)


@pytest.mark.parametrize(("request_type", "fields"), [
    (resource_pb2.RegisterResourceRequest, ("type", "name", "parent", "custom", "object", "protect", "dependencies",
                                            "importId", "aliases", "ignoreChanges", "retainOnDelete")),
    (resource_pb2.ReadResourceRequest, ("type", "name", "parent", "properties", "dependencies")),
    (alias_pb2.Alias, ("urn", "spec")),
    (alias_pb2.Alias.Spec, ("name", "type", "stack", "project", "parentUrn", "noParent")),
])
def test_the_requests_carry_the_fields_the_monitor_reads(request_type, fields):
    present = {field.name for field in request_type.DESCRIPTOR.fields}
    assert set(fields) <= present, f"{request_type.__name__} lost {sorted(set(fields) - present)}"


def test_an_alias_is_a_urn_or_a_spec():
    assert {one.name: [f.name for f in one.fields] for one in alias_pb2.Alias.DESCRIPTOR.oneofs} == {
        "alias": ["urn", "spec"]}


# ---------------------------------------------------------------------------- a small program, end to end


class _Part(pulumi.ComponentResource):
    """A component that holds other resources."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sdkpin:index:Part", name, None, opts)
        self.register_outputs({})


def _program() -> None:
    """One resource per option the plan records."""
    outer = _Part("outer")
    inner = _Part("inner", pulumi.ResourceOptions(parent=outer))
    first = pulumi.CustomResource("sdkpin:index:Thing", "first", {"size": 1},
                                  pulumi.ResourceOptions(parent=inner, protect=True))

    def after_first(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != "sdkpin:index:Ordered":
            return None
        return pulumi.ResourceTransformResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=[first])))

    pulumi.runtime.register_resource_transform(after_first)
    pulumi.CustomResource("sdkpin:index:Ordered", "ordered", {})
    pulumi.CustomResource("sdkpin:index:Waiting", "waiting", {}, pulumi.ResourceOptions(depends_on=[first]))
    token = pulumi.Config("sdkpin").require_secret("token")
    adopted = pulumi.CustomResource("sdkpin:index:Adopted", "adopted", {"token": token, "size": 2}, pulumi.ResourceOptions(
        import_="existing-id", ignore_changes=["size"], retain_on_delete=True,
        aliases=[pulumi.Alias(name="former"), pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE),
                 "urn:pulumi:sdkpin::raptorflow-dr::sdkpin:index:Adopted::oldest"]))
    reference = pulumi.StackReference(OTHER_STACK)
    pulumi.export("bucket", reference.get_output("bucket"))
    pulumi.export("token", token)
    pulumi.export("adoptedId", adopted.id.apply(lambda id_: f"{id_}!"))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return record_resources(_program, "sdkpin", {PROJECT_KEY: "s3cret"}, [PROJECT_KEY], {OTHER_STACK: {"bucket": "b"}})


def test_a_child_gets_the_engines_urn_and_its_parent(plan):
    first = plan.named("first")
    assert first.urn == ("urn:pulumi:sdkpin::raptorflow-dr::sdkpin:index:Part$sdkpin:index:Part$sdkpin:index:Thing"
                         "::first"), "the recorded URN is not the engine's (MockMonitor.make_urn is not called?)"
    assert first.parent == plan.named("inner").urn
    assert plan.named("outer").parent == "urn:pulumi:sdkpin::raptorflow-dr::pulumi:pulumi:Stack::raptorflow-dr-sdkpin"


def test_protect_and_custom_come_through(plan):
    assert plan.named("first").protect and plan.named("first").custom
    assert not plan.named("outer").protect and not plan.named("outer").custom


def test_explicit_dependencies_come_through(plan):
    assert plan.named("waiting").dependencies == [plan.named("first").urn]


def test_a_resource_transform_runs_as_the_engine_would(plan):
    assert plan.named("ordered").dependencies == [plan.named("first").urn], (
        "the stack's resource transform did not reach the mocks (Mocks.register_transform) or was not run")


def test_import_ignore_changes_and_retain_on_delete_come_through(plan):
    adopted = plan.named("adopted")
    assert (adopted.import_id, adopted.ignore_changes, adopted.retain_on_delete) == ("existing-id", ["size"], True)
    assert (plan.named("first").import_id, plan.named("first").ignore_changes,
            plan.named("first").retain_on_delete) == (None, [], False)


def test_aliases_come_through_as_specs_and_urns(plan):
    assert plan.named("adopted").aliases == [
        {"name": "former"}, {"noParent": True}, {"urn": "urn:pulumi:sdkpin::raptorflow-dr::sdkpin:index:Adopted::oldest"}]


def test_a_secret_config_value_is_a_secret_input(plan):
    token = plan.named("adopted").inputs["token"]
    assert is_secret(token) and token == {SIG_KEY: SECRET_SIG, "value": "s3cret"}
    assert plan.named("adopted").inputs["size"] == 2


def test_a_stack_reference_is_a_recorded_read_fed_the_other_stacks_outputs(plan):
    reference = plan.named(OTHER_STACK)
    assert (reference.type, reference.custom, reference.inputs) == (STACK_REFERENCE_TYPE, True, {"name": OTHER_STACK})
    assert plan.outputs["bucket"] == "b"


def test_exports_are_resolved_and_a_secret_one_is_redacted(plan):
    assert plan.outputs == {"bucket": "b", "token": {SIG_KEY: SECRET_SIG, "value": "[secret]"},
                            "adoptedId": "adopted-id!"}


def test_the_components_and_the_stack_itself_are_recorded_once_each(plan):
    assert [r.name for r in plan.resources if r.type == "pulumi:pulumi:Stack"] == []
    assert sorted(r.name for r in plan.resources) == sorted(
        ["outer", "inner", "first", "ordered", "waiting", "adopted", OTHER_STACK])


def test_the_program_reads_every_config_key_and_which_are_secret():
    from components.config.loading import _runtime_config

    def read() -> tuple[dict[str, Any], set[str]]:
        pulumi.runtime.set_all_config({PROJECT_KEY: "s3cret", "sdkpin:plain": "p"}, [PROJECT_KEY])
        return _runtime_config()

    values, secrets = contextvars.Context().run(read)
    assert values == {PROJECT_KEY: "s3cret", "sdkpin:plain": "p"} and secrets == {PROJECT_KEY}


def test_the_monitor_is_called_from_executor_threads_and_closes_the_loops_it_made_there():
    threads: list[threading.Thread] = []

    class Plain(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            return f"{args.name}-id", args.inputs

        def call(self, args: pulumi.runtime.MockCallArgs):
            return {}

    def run() -> list[asyncio.AbstractEventLoop]:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        monitor = pulumi_internals.RecordingMonitor(
            Plain(), registered=lambda _: threads.append(threading.current_thread()), read=lambda _: None)
        pulumi.runtime.set_mocks(monitor.mocks, project="sdkpin", stack="threads", preview=False, monitor=monitor)
        try:
            pulumi.runtime.test(lambda: pulumi.CustomResource("sdkpin:index:Thing", "one", {}))()
            return list(monitor._thread_loops)
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()
            monitor.close()

    made = contextvars.Context().run(run)
    assert threads and threading.main_thread() not in threads, "the SDK now calls the monitor on the program's thread"
    assert made and all(loop.is_closed() for loop in made)


# ---------------------------------------------------------------------------- one seam


def _sources() -> list[Path]:
    return project_modules()


def sdk_internal_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) of every use of the SDK's internals in a module: an import of an internal module or of a private
    name, an attribute path into an internal module, a request protobuf's field."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith(INTERNAL_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("pulumi", "pulumi_policy"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names
                      if name.startswith(INTERNAL_MODULES) or name.rsplit(".", 1)[1].startswith("_")]
        elif isinstance(node, ast.Attribute):
            if node.attr in REQUEST_FIELDS:
                found.append((node.lineno, f".{node.attr}"))
            elif ast.unparse(node).startswith(INTERNAL_MODULES):
                found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in REQUEST_FIELDS):
            found.append((node.lineno, f"getattr(..., {node.args[1].value!r})"))
    return sorted(set(found))


def test_only_the_adapter_uses_the_sdks_internals():
    allowed = {ADAPTER, Path(__file__).resolve()}
    offenders = {path.relative_to(ROOT).as_posix(): uses for path in _sources() if path.resolve() not in allowed
                 for uses in [sdk_internal_uses(path.read_text())] if uses}
    assert not offenders, ("modules outside components/pulumi_internals.py use the SDK's internals (move the use "
                           f"there, listed in its docstring, and pin it here): {offenders}")


def test_the_scan_finds_each_kind_of_internal_use():
    planted = (
        "import pulumi.runtime.rpc\n"
        "from pulumi.runtime.sync_await import _sync_await\n"
        "from pulumi.runtime import config\n"
        "from pulumi.output import _map_output\n"
        "x = pulumi.runtime.stack.Stack\n"
        "y = request.importId\n"
        "z = getattr(request, 'retainOnDelete', False)\n"
        "ok = pulumi.runtime.set_mocks\n"
        "from pulumi.runtime import set_all_config\n"
        "keys = {'ignoreChanges': []}\n"
    )
    assert sorted({line for line, _ in sdk_internal_uses(planted)}) == [1, 2, 3, 4, 5, 6, 7]
    assert [line for line, _ in sdk_internal_uses(ADAPTER.read_text())], "the adapter's own uses are found"
