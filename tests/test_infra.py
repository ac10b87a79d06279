"""Parity between the deployed system (infra/*.bicep) and the app the tests exercise: the same app
settings as shared/settings.py and local.settings.json.example, and one Event Grid subscription per
Event Grid-triggered function with the local delivery's filters."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from shared.settings import SETTINGS, Settings
from tests.infra import INFRA, ROOT, bicep_files, body, module_params, resource, tree, variable

MAIN = "infra/main.bicep"
FUNCTION_APP = "infra/modules/function-app.bicep"
EVENT_TOPIC = "infra/modules/event-topic.bicep"
EVENT_SUBSCRIPTIONS = "infra/modules/event-subscriptions.bicep"
HOST_STORAGE = "infra/modules/host-storage.bicep"

#: App settings of the Functions host in Azure, beside the registry's own (why each is there).
BICEP_HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName": "host storage account, reached with the managed identity",
    "AzureWebJobsStorage__credential": "`managedidentity`: the host uses no storage key",
    "AzureWebJobsStorage__clientId": "which user-assigned identity the host uses for its storage",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where telemetry goes",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "telemetry is sent with the identity (local auth is off)",
    "AZURE_CLIENT_ID": "the identity DefaultAzureCredential picks for registry storage and Event Grid",
}
#: Settings `func start` needs locally that Flex Consumption sets itself (runtime) or names differently.
LOCAL_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}

#: Keys of one entry of main.bicep's ``eventSubscriptions``.
SUBSCRIPTION_KEYS = {"functionName", "includedEventTypes", "subjectBeginsWith", "subjectEndsWith"}

#: Where the local delivery declares its subscriptions. Contract: ``SUBSCRIPTIONS``, an iterable of
#: objects with ``function_name``, ``included_event_types``, ``subject_begins_with``, ``subject_ends_with``.
LOCAL_SUBSCRIPTIONS_MODULE = "shared.events.subscriptions"


def local_example() -> dict[str, str]:
    """The ``Values`` of local.settings.json.example."""
    values: dict[str, str] = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    return values


#: Run in a fresh interpreter, as the Functions host indexes the app: ``get_functions()`` may be
#: called once per app object (a second call raises on the "duplicate" HTTP function).
_INDEX = """
import json, function_app
print(json.dumps({str(f.get_function_name()): [b.type for b in f.get_bindings()]
                  for f in function_app.app.get_functions()}))
"""


@cache
def indexed_functions() -> dict[str, list[str]]:
    """Every function the app indexes, with the types of its bindings."""
    result = subprocess.run(
        [sys.executable, "-c", _INDEX], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    functions: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return functions


def event_grid_functions() -> set[str]:
    """Names of the functions the app indexes whose trigger is Event Grid."""
    return {name for name, bindings in indexed_functions().items() if "eventGridTrigger" in bindings}


def bicep_subscriptions() -> dict[str, dict[str, Any]]:
    """main.bicep's ``eventSubscriptions``, by function name."""
    entries: list[dict[str, Any]] = variable(MAIN, "eventSubscriptions")
    return {entry["functionName"]: entry for entry in entries}


def local_subscriptions() -> dict[str, dict[str, Any]] | None:
    """The local delivery's subscriptions in main.bicep's entry shape; None until the module exists."""
    try:
        module = importlib.import_module(LOCAL_SUBSCRIPTIONS_MODULE)
    except ModuleNotFoundError as error:
        if error.name not in ("shared.events", LOCAL_SUBSCRIPTIONS_MODULE):
            raise
        return None
    return {
        sub.function_name: {
            "functionName": sub.function_name,
            "includedEventTypes": list(sub.included_event_types),
            "subjectBeginsWith": sub.subject_begins_with,
            "subjectEndsWith": sub.subject_ends_with,
        }
        for sub in module.SUBSCRIPTIONS
    }


# --- app settings ---------------------------------------------------------------------------------


def test_bicep_registry_settings_are_exactly_the_settings_module() -> None:
    assert set(variable(MAIN, "registrySettings")) == set(SETTINGS)


def test_bicep_host_settings_are_exactly_the_allowed_extras() -> None:
    assert set(variable(FUNCTION_APP, "hostSettings")) == set(BICEP_HOST_SETTINGS)


def test_function_app_gets_host_and_registry_settings_and_nothing_else() -> None:
    assert module_params(MAIN, "functionApp")["registrySettings"] == "registrySettings"
    assert variable(FUNCTION_APP, "appSettings") == {
        "function": {"type": "union", "parameters": {"arg_1": "hostSettings", "arg_2": "registrySettings"}}
    }
    app_settings = body(resource(FUNCTION_APP, "site"))["properties"]["siteConfig"]["appSettings"]
    assert app_settings["loop_type"]["detail"]["object_name"] == "appSettings"


def test_local_settings_example_has_every_setting_plus_the_local_host_settings() -> None:
    example = set(local_example())
    assert LOCAL_HOST_SETTINGS <= example
    assert example - LOCAL_HOST_SETTINGS == set(SETTINGS)


def test_local_settings_example_is_a_valid_configuration() -> None:
    settings = Settings.from_env(local_example())
    assert settings.storage_connection_string == "UseDevelopmentStorage=true"


# --- Event Grid -----------------------------------------------------------------------------------


def test_the_app_indexes_its_http_and_timer_functions() -> None:
    functions = indexed_functions()
    assert "httpTrigger" in functions["http_app_func"]
    assert "timerTrigger" in functions["purge_stale_uploads"]


def test_every_event_grid_function_has_a_bicep_subscription_and_vice_versa() -> None:
    assert set(bicep_subscriptions()) == event_grid_functions()


def test_bicep_subscription_entries_have_the_documented_keys() -> None:
    entries = variable(MAIN, "eventSubscriptions")
    assert len(entries) == len(bicep_subscriptions()), "two eventSubscriptions entries name the same function"
    for name, entry in bicep_subscriptions().items():
        assert set(entry) == SUBSCRIPTION_KEYS, name
        assert isinstance(entry["includedEventTypes"], list) and entry["includedEventTypes"], name


def test_bicep_subscriptions_use_the_local_delivery_filters() -> None:
    local = local_subscriptions()
    if local is None:
        missing = f"{LOCAL_SUBSCRIPTIONS_MODULE} is missing"
        assert bicep_subscriptions() == {}, f"Bicep declares subscriptions but {missing}"
        assert event_grid_functions() == set(), f"Event Grid functions exist but {missing}"
        return
    assert set(local) == event_grid_functions()
    assert bicep_subscriptions() == local


def test_main_passes_its_subscription_list_to_the_subscriptions_module() -> None:
    params = module_params(MAIN, "topicSubscriptions")
    assert params["subscriptions"] == "eventSubscriptions"
    assert params["subscriptionsEnabled"] == "eventSubscriptionsEnabled"


def test_each_subscription_targets_its_function_with_filters_retries_and_dead_letters() -> None:
    subscriptions = resource(EVENT_SUBSCRIPTIONS, "eventSubscriptions")
    assert subscriptions["type"] == "Microsoft.EventGrid/topics/eventSubscriptions"
    assert subscriptions["config"]["loop_type"]["detail"]["array_name"] == "subscriptions"
    properties = body(subscriptions)["properties"]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${sub.functionName}"
    assert set(properties["filter"]) >= {"includedEventTypes", "subjectBeginsWith", "subjectEndsWith"}
    for key in ("includedEventTypes", "subjectBeginsWith", "subjectEndsWith"):
        assert properties["filter"][key]["operator"]["operands"] == {"operand_1": "sub", "operand_2": key}
    assert set(properties["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = properties["deadLetterWithResourceIdentity"]["deadLetterDestination"]
    assert dead_letter["endpointType"] == "StorageBlob"
    assert dead_letter["properties"]["blobContainerName"] == "deadLetterContainerName"


def test_topic_and_dead_letter_container_exist() -> None:
    topic = resource(EVENT_TOPIC, "topic")
    assert topic["type"] == "Microsoft.EventGrid/topics"
    assert body(topic)["properties"]["disableLocalAuth"] is True
    assert resource(EVENT_SUBSCRIPTIONS, "topic")["existing"] is True
    assert body(resource(EVENT_SUBSCRIPTIONS, "eventSubscriptions"))["parent"] == "topic"
    container = resource(HOST_STORAGE, "deadLetterContainer")
    assert container["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
    assert body(container)["name"] == "deadLetterContainerName"
    assert body(resource(HOST_STORAGE, "deadLetterWriter"))["scope"] == "deadLetterContainer"
    assert variable(MAIN, "deadLetterContainerName")
    assert module_params(MAIN, "hostStorage")["deadLetterContainerName"] == "deadLetterContainerName"


# --- deployment wiring ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [str(p.relative_to(ROOT)) for p in bicep_files()])
def test_every_module_a_bicep_file_uses_exists(path: str) -> None:
    for name, module in tree(path).get("modules", {}).items():
        target = (ROOT / path).parent / module["detail"]["path"]
        assert target.is_file(), f"{path}: module {name} points at missing {target}"


def test_parameters_file_matches_main_bicep() -> None:
    declared = tree(MAIN)["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared)
    required = {name for name, param in declared.items() if param["default"] is None}
    assert required <= set(given)


def test_azd_service_is_the_tagged_function_app() -> None:
    assert "\n  registry:\n    project: .\n" in (ROOT / "azure.yaml").read_text()
    tags = body(resource(FUNCTION_APP, "site"))["tags"]
    assert tags["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "registry"}
