"""Parity between the deployed system (infra/*.bicep) and the app the tests exercise: the same app
settings as the settings declarations and local.settings.json.example, and one Event Grid subscription per
Event Grid-triggered function with the local delivery's filters."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from shared.composition import SETTINGS, load_settings
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
    "PYTHON_ENABLE_INIT_INDEXING": "the worker indexes at start-up, so it serves HTTP streams",
    "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "the host's body cap (100 MB by default) raised to ACR's 200 GiB layers",
    "RegistryStorage__queueServiceUri": "the queue triggers' connection: the registry storage's queue service",
    "RegistryStorage__credential": "`managedidentity`: the queue triggers use no storage key",
    "RegistryStorage__clientId": "which user-assigned identity the queue triggers use",
}
#: Settings `func start` needs locally that Flex Consumption sets itself (runtime) or names differently,
#: and the host settings HTTP streams need (as in Azure).
LOCAL_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "RegistryStorage",
                       "PYTHON_ENABLE_INIT_INDEXING", "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"}

#: Where the local delivery declares its subscriptions (``SUBSCRIPTIONS``, frozen dataclasses), and
#: the key of each of their fields in an entry of main.bicep's ``eventSubscriptions``.
LOCAL_SUBSCRIPTIONS_MODULE = "shared.composition"
BICEP_SUBSCRIPTION_KEYS = {
    "name": "name",
    "function_name": "functionName",
    "included_event_types": "includedEventTypes",
    "subject_begins_with": "subjectBeginsWith",
    "subject_ends_with": "subjectEndsWith",
    "max_delivery_attempts": "maxDeliveryAttempts",
    "event_time_to_live_minutes": "eventTimeToLiveInMinutes",
    "dead_letter": "deadLetter",
}


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


def local_subscriptions() -> dict[str, dict[str, Any]]:
    """The local delivery's subscriptions in main.bicep's entry shape, by function name."""
    module = importlib.import_module(LOCAL_SUBSCRIPTIONS_MODULE)
    entries = {}
    for sub in module.SUBSCRIPTIONS:
        fields = dataclasses.asdict(sub)
        assert set(fields) == set(BICEP_SUBSCRIPTION_KEYS), "a Subscription field has no Bicep key yet"
        entry = {BICEP_SUBSCRIPTION_KEYS[field]: value for field, value in fields.items()}
        entry["includedEventTypes"] = list(entry["includedEventTypes"])
        entries[sub.function_name] = entry
    return entries


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
    settings = load_settings(local_example())
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"


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
        assert set(entry) == set(BICEP_SUBSCRIPTION_KEYS.values()), name
        assert isinstance(entry["includedEventTypes"], list) and entry["includedEventTypes"], name


def test_bicep_subscriptions_are_the_local_delivery_subscriptions() -> None:
    local = local_subscriptions()
    assert set(local) == event_grid_functions()
    assert bicep_subscriptions() == local


def test_app_topic_and_subscriptions_use_one_event_schema() -> None:
    assert variable(MAIN, "eventSchema") == "EventGridSchema"  # what functions/events.py reads
    assert variable(MAIN, "registrySettings")["REGISTRY_EVENTS_SCHEMA"] == "eventSchema"
    assert module_params(MAIN, "eventTopic")["inputSchema"] == "eventSchema"
    assert module_params(MAIN, "topicSubscriptions")["deliverySchema"] == "eventSchema"


def test_main_passes_its_subscription_list_to_the_subscriptions_module() -> None:
    params = module_params(MAIN, "topicSubscriptions")
    # eventSubscriptions, plus the replication consumer's when there are replica locations
    assert params["subscriptions"] == "regionSubscriptions"
    assert variable(MAIN, "regionSubscriptions")["function"] == {"type": "concat", "parameters": {
        "arg_1": "eventSubscriptions",
        "arg_2": {"operator": {"type": "conditional", "operands": {
            "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "replicaLocations"}}},
            "true_value": [], "false_value": ["replicationSubscription"]}}}}}
    assert params["subscriptionsEnabled"] == "eventSubscriptionsEnabled"


def _entry_field(value: Any) -> Any:
    """The entry key a ``sub.<key>`` expression reads."""
    return value["operator"]["operands"]["operand_2"]


def test_each_subscription_is_built_from_its_entry_with_retries_and_dead_letters() -> None:
    subscriptions = resource(EVENT_SUBSCRIPTIONS, "eventSubscriptions")
    assert subscriptions["type"] == "Microsoft.EventGrid/topics/eventSubscriptions"
    assert subscriptions["config"]["loop_type"]["detail"] == {"item_name": "sub", "array_name": "subscriptions"}
    declaration = body(subscriptions)
    assert _entry_field(declaration["name"]) == "name"
    properties = declaration["properties"]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${sub.functionName}"
    for key in ("includedEventTypes", "subjectBeginsWith", "subjectEndsWith"):
        assert _entry_field(properties["filter"][key]) == key
    assert properties["filter"]["isSubjectCaseSensitive"] is True  # as Subscription.matches compares
    assert {key: _entry_field(value) for key, value in properties["retryPolicy"].items()} == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    dead_letter = properties["deadLetterWithResourceIdentity"]["operator"]
    assert dead_letter["type"] == "conditional"
    assert _entry_field(dead_letter["operands"]["condition"]) == "deadLetter"
    destination = dead_letter["operands"]["true_value"]["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"


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
    # one app per azd service: replica regions' apps pass an empty azdServiceName and get no tag
    assert tags["function"]["parameters"]["arg_2"] == {"operator": {"type": "conditional", "operands": {
        "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "azdServiceName"}}},
        "true_value": {}, "false_value": {"'azd-service-name'": "azdServiceName"}}}}
    assert tree(FUNCTION_APP)["parameters"]["azdServiceName"]["default"] == "registry"
    assert "azdServiceName" not in module_params(MAIN, "functionApp")


# --- identity and secrets -------------------------------------------------------------------------

KEY_VAULT = "infra/modules/key-vault.bicep"
#: Setting -> (Key Vault secret it references, the parameter condition that must hold, or None).
SECRET_SETTINGS = {
    "REGISTRY_TOKEN_SIGNING_KEY": ("token-signing-key", None),
    "REGISTRY_TOKEN_PREVIOUS_KEY": ("token-signing-key-previous", "tokenPreviousKeyEnabled"),
    "REGISTRY_ADMIN_PASSWORD": ("admin-password", "adminUserEnabled"),
    "REGISTRY_ADMIN_PASSWORD2": (
        "admin-password2",
        {"operator": {"type": "and",
                      "operands": {"operand_1": "adminUserEnabled", "operand_2": "adminPassword2Enabled"}}},
    ),
}


def key_vault_reference(secret: str) -> str:
    """The app setting value that makes App Service read ``secret`` from the registry's vault."""
    return f"@Microsoft.KeyVault(VaultName=${{keyVault.outputs.name}};SecretName={secret})"


def test_secret_settings_are_key_vault_references_to_the_registry_vault() -> None:
    settings = variable(MAIN, "registrySettings")
    for name, (secret, condition) in SECRET_SETTINGS.items():
        if condition is None:
            assert settings[name] == key_vault_reference(secret), name
        else:
            # a reference to a secret that may not exist must not be set: its literal text would be the value
            assert settings[name] == {"operator": {"type": "conditional", "operands": {
                "condition": condition, "true_value": key_vault_reference(secret), "false_value": ""}}}, name
    other = {name: value for name, value in settings.items() if name not in SECRET_SETTINGS}
    assert "KeyVault" not in json.dumps(other)


def test_authentication_is_on_and_trusts_the_deployment_tenant() -> None:
    settings = variable(MAIN, "registrySettings")
    assert settings["REGISTRY_AUTH_ENABLED"] == "true"
    assert settings["REGISTRY_ADMIN_ENABLED"]["operator"]["operands"] == {
        "condition": "adminUserEnabled", "true_value": "true", "false_value": "false"}
    assert tree(MAIN)["parameters"]["adminUserEnabled"]["default"] is False  # as ACR
    assert settings["REGISTRY_ENTRA_TENANTS"]["function"]["type"] == "subscription"
    assert settings["REGISTRY_ENTRA_TENANTS"]["function"]["property_name"] == "tenantId"
    authority = settings["REGISTRY_ENTRA_AUTHORITY"]["operator"]["operands"]
    assert authority["operand_1"]["function"] == {"type": "environment", "property_name": "authentication"}
    assert authority["operand_2"] == "loginEndpoint"
    # one region: the request's Host (see the comment in main.bicep); with replicas, the Front Door's
    assert settings["REGISTRY_LOGIN_SERVER"]["operator"]["operands"]["true_value"] == ""


def test_app_resolves_key_vault_references_with_its_identity() -> None:
    assert body(resource(FUNCTION_APP, "site"))["properties"]["keyVaultReferenceIdentity"] == "identityId"
    # the identity the app runs as (and resolves references with) is the one that may read secrets
    app_identity = module_params(MAIN, "functionApp")["identityId"]["operator"]["operands"]
    reader = module_params(MAIN, "keyVault")["readerPrincipalId"]["operator"]["operands"]
    assert app_identity == {"operand_1": "appIdentity", "operand_2": "id"}
    assert reader["operand_1"] == "appIdentity"
    assert body(resource(KEY_VAULT, "reader"))["scope"] == "vault"
    assert variable(KEY_VAULT, "secretsUser") == "4633458b-17de-408a-b874-0445c86b69e6"  # Key Vault Secrets User


def test_deployer_may_write_the_secrets_the_hook_creates() -> None:
    assert module_params(MAIN, "keyVault")["secretsOfficerPrincipalId"] == "deployerPrincipalId"
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["deployerPrincipalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    officer = resource(KEY_VAULT, "officer")
    assert officer["type"] == "Microsoft.Authorization/roleAssignments"
    assert body(officer)["scope"] == "vault"
    assert variable(KEY_VAULT, "secretsOfficer") == "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"  # Key Vault Secrets Officer
