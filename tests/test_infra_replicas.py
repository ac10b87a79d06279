"""The replica regions of infra/main.bicep (``replicaLocations``): each region's app is the home
app with only its region's own settings changed, ``REGISTRY_REGIONS`` is a configuration the app
accepts in every region, every region's topic subscribes the consumers the app registers with two
regions, the one identity may write every region's storage, replicas need Premium, and a Front Door
routes one login server to every region."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from typing import Any

from shared.composition import SETTINGS, configure
from shared.events.subscriptions import subscriptions_of
from shared.replication.settings import ReplicationSettings
from tests.infra import ROOT, body, module_params, resource, tree, variable
from tests.test_infra import BICEP_SUBSCRIPTION_KEYS, bicep_subscriptions

MAIN = "infra/main.bicep"
REPLICA = "infra/modules/replica-region.bicep"
REGISTRY_STORAGE = "infra/modules/registry-storage.bicep"
FRONT_DOOR = "infra/modules/front-door.bicep"
ORIGIN = "infra/modules/front-door-origin.bicep"
ROUTE = "infra/modules/front-door-route.bicep"

#: The settings a replica region's app sets to its own values; every other one is the home app's.
REGION_SPECIFIC = {
    "REGISTRY_REGION": "regionName",
    "REGISTRY_LOCATION": "location",
    "REGISTRY_RESOURCE_ID": ("Microsoft.Web/sites", "appName"),  # resourceId(type, name)
    "REGISTRY_BLOB_ENDPOINT": ("registryStorage", "blobEndpoint"),
    "REGISTRY_TABLE_ENDPOINT": ("registryStorage", "tableEndpoint"),
    "REGISTRY_QUEUE_ENDPOINT": ("registryStorage", "queueEndpoint"),
    "REGISTRY_EVENTGRID_ENDPOINT": ("eventTopic", "endpoint"),
}

#: The replication consumer's subscription as the design names it (issue 11's shared design).
REPLICATION_SUBSCRIPTION = {
    "name": "replication",
    "functionName": "replicate",
    "includedEventTypes": [
        "Microsoft.ContainerRegistry.ImagePushed", "Microsoft.ContainerRegistry.ImageDeleted",
        "Microsoft.ContainerRegistry.ChartPushed", "Microsoft.ContainerRegistry.ChartDeleted",
        "ContainerRegistry.TagDeleted", "ContainerRegistry.AttributesChanged",
    ],
    "subjectBeginsWith": "", "subjectEndsWith": "", "maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440,
    "deadLetter": True,
}

#: Role definition ids (Azure built-in roles), written out here rather than read from the Bicep.
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"


def two_regions() -> dict[str, str]:
    """An environment listing two regions: replication on."""
    regions = [{"name": "east", "connection_string": "UseDevelopmentStorage=true"},
               {"name": "west", "connection_string": "UseDevelopmentStorage=true"}]
    return {"REGISTRY_REGIONS": json.dumps(regions), "REGISTRY_REGION": "east",
            "REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}


def local_subscriptions(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The consumers' subscriptions of the app configured by ``environ``, in Bicep's entry shape."""
    entries = {}
    for sub in subscriptions_of(configure(environ=environ).consumers):
        entry = {BICEP_SUBSCRIPTION_KEYS[k]: v for k, v in dataclasses.asdict(sub).items()}
        entry["includedEventTypes"] = list(entry["includedEventTypes"])
        entries[sub.function_name] = entry
    return entries


def event_grid_functions(environ: dict[str, str]) -> set[str]:
    """The Event Grid-triggered functions the function app indexes under ``environ``."""
    script = ("import json, function_app\nprint(json.dumps([str(f.get_function_name()) "
              "for f in function_app.app.get_functions() "
              "if any(b.type == 'eventGridTrigger' for b in f.get_bindings())]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **environ}, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def output_of(module: str, name: str) -> dict[str, Any]:
    """pycep's tree of ``<module>.outputs.<name>``."""
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": module, "operand_2": {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": name}}}}}}


def property_of(symbol: str, *path: str) -> Any:
    """pycep's tree of ``symbol.a.b``."""
    value: Any = path[-1]
    for name in reversed(path[:-1]):
        value = {"operator": {"type": "property_accessor", "operands": {"operand_1": name, "operand_2": value}}}
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": symbol, "operand_2": value}}}


def home_region(field: str) -> dict[str, Any]:
    """pycep's tree of ``regions[0].<field>`` (the home region's entry in main.bicep's regions)."""
    return region_at(0, field)


def replica_region(field: str) -> dict[str, Any]:
    """pycep's tree of ``regions[i + 1].<field>`` (the replica's entry in main.bicep's regions)."""
    return region_at({"operator": {"type": "add", "operands": {"operand_1": "i", "operand_2": 1}}}, field)


def region_at(index: Any, field: str) -> dict[str, Any]:
    return {"operator": {"type": "property_accessor", "operands": {
        "operand_1": {"operator": {"type": "index_accessor", "operands": {"operand_1": "regions", "operand_2": index}}},
        "operand_2": field}}}


def allowed(parameter: dict[str, Any]) -> Any:
    """The ``@allowed`` values of a parameter declaration."""
    return next(d for d in parameter["decorators"] if d["type"] == "allowed")["argument"]


def not_empty_replicas() -> dict[str, Any]:
    return {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "replicaLocations"}}}}}}


# --- Event Grid -----------------------------------------------------------------------------------


def test_replication_subscription_is_the_consumer_the_app_registers_with_two_regions() -> None:
    main_entry = variable(MAIN, "replicationSubscription")
    with_replicas = {**bicep_subscriptions(), main_entry["functionName"]: main_entry}
    local = local_subscriptions(two_regions())
    assert "replicate" in local and with_replicas == local
    assert event_grid_functions(two_regions()) == set(with_replicas)
    assert "replicate" not in local_subscriptions({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})


def test_every_region_subscribes_its_own_app_to_the_same_subscriptions() -> None:
    assert module_params(MAIN, "replicas")["subscriptions"] == "regionSubscriptions"
    assert module_params(MAIN, "replicas")["subscriptionsEnabled"] == "eventSubscriptionsEnabled"
    params = module_params(REPLICA, "topicSubscriptions")
    assert params["subscriptions"] == "subscriptions"
    assert params["functionAppId"] == output_of("functionApp", "id")
    assert params["topicName"] == output_of("eventTopic", "name")
    assert params["deadLetterStorageId"] == output_of("hostStorage", "id")


# --- settings -------------------------------------------------------------------------------------


def test_replica_app_settings_are_the_home_settings_except_the_region_specific_ones() -> None:
    assert module_params(MAIN, "replicas")["baseSettings"] == "registrySettings"
    given = module_params(REPLICA, "functionApp")["registrySettings"]
    assert given == {"function": {"type": "union", "parameters": {"arg_1": "baseSettings", "arg_2": "regionSettings"}}}
    region_settings = variable(REPLICA, "regionSettings")
    assert set(region_settings) == set(REGION_SPECIFIC)
    assert set(REGION_SPECIFIC) <= set(SETTINGS)
    for name, expected in REGION_SPECIFIC.items():
        value = region_settings[name]
        if name == "REGISTRY_RESOURCE_ID":
            parameters = value["function"]["parameters"]
            assert (parameters["resource_type"], parameters["resource_name_1"]) == expected
            assert parameters["resource_name_2"] is None
        elif isinstance(expected, tuple):
            assert value == output_of(*expected), name
        else:
            assert value == expected, name
    assert module_params(MAIN, "replicas")["regionName"] == replica_region("name")
    assert module_params(MAIN, "replicas")["appName"] == replica_region("appName")
    # the host settings of a replica's app name its own registry storage's queues
    queue = output_of("registryStorage", "queueEndpoint")
    assert module_params(REPLICA, "functionApp")["registryQueueEndpoint"] == queue
    assert module_params(REPLICA, "functionApp")["azdServiceName"] == ""


def test_home_app_names_its_region_only_when_there_are_replicas() -> None:
    settings = variable(MAIN, "registrySettings")
    for name, false_value in {
        "REGISTRY_REGION": home_region("name"),
        "REGISTRY_REGIONS": {"function": {"type": "string", "parameters": {"value_to_convert": "regionEntries"}}},
    }.items():
        assert settings[name]["operator"]["operands"] == {
            "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "replicaLocations"}}},
            "true_value": "", "false_value": false_value}, name
    assert settings["REGISTRY_REPLICATION_RETRY_SECONDS"] == "120"


def _interpolate(template: str, region: dict[str, str]) -> str:
    """A Bicep string of regionEntries with ``${region.<field>}`` and the storage suffix filled in."""
    text = template.replace("${environment().suffixes.storage}", "core.windows.net")
    return re.sub(r"\$\{region\.(\w+)\}", lambda match: region[match.group(1)], text)


def test_bicep_regions_setting_is_valid_in_every_region_and_uses_no_keys() -> None:
    entry = variable(MAIN, "regionEntries")
    assert entry["loop_type"]["detail"] == {"item_name": "region", "array_name": "regions"}
    template = entry["config"]
    assert template["name"] == property_of("region", "name")
    # the storage accounts and apps Bicep would name, for a home region and two replicas
    regions = [{"name": "westeurope", "storageName": "regabc", "appName": "myregistry"},
               {"name": "eastus", "storageName": "repdef", "appName": "myregistry-eastus"},
               {"name": "southeastasia", "storageName": "repghi", "appName": "myregistry-southeastasia"}]
    entries = [{key: region["name"] if key == "name" else _interpolate(value, region)
                for key, value in template.items()} for region in regions]
    assert entries[1] == {
        "name": "eastus", "blob_endpoint": "https://repdef.blob.core.windows.net/",
        "table_endpoint": "https://repdef.table.core.windows.net/",
        "queue_endpoint": "https://repdef.queue.core.windows.net/", "endpoint": "https://myregistry-eastus.azurewebsites.net",
    }
    text = json.dumps(entries)
    for region in regions:
        replication = ReplicationSettings.from_env({"REGISTRY_REGIONS": text, "REGISTRY_REGION": region["name"]})
        replication.check()  # what the app does when it starts
        assert [r.name for r in replication.regions] == ["westeurope", "eastus", "southeastasia"]
        assert replication.enabled and replication.local == region["name"]
    assert "connection_string" not in json.dumps(template) and "Key" not in json.dumps(template)


def test_regions_are_the_home_location_then_the_replica_locations_with_their_own_names() -> None:
    assert variable(MAIN, "regionLocations") == {"function": {"type": "concat", "parameters": {
        "arg_1": ["location"], "arg_2": "replicaLocations"}}}
    config = variable(MAIN, "regions")["config"]
    assert config["name"] == {"function": {"type": "to_lower", "parameters": {"string_to_change": {"function": {
        "type": "replace", "parameters": {"original_string": "regionLocation", "old_string": " ", "new_string": ""}}}}}}
    homes = {"appName": "registryName", "storageName": "reg${token}", "hostStorageName": "fn${token}"}
    for field, home in homes.items():
        operands = config[field]["operator"]["operands"]
        assert operands["condition"] == {"operator": {"type": "equals", "operands": {"operand_1": "i", "operand_2": 0}}}
        assert operands["true_value"] == home, field
    assert module_params(MAIN, "registryStorage")["name"] == home_region("storageName")
    assert module_params(MAIN, "hostStorage")["name"] == home_region("hostStorageName")
    assert module_params(MAIN, "replicas")["registryStorageName"] == replica_region("storageName")
    assert module_params(MAIN, "replicas")["hostStorageName"] == replica_region("hostStorageName")
    # the same containers, tables and queues as the home region: the same module, the same queues
    assert tree(REPLICA)["modules"]["registryStorage"]["detail"]["path"] == "registry-storage.bicep"
    assert module_params(MAIN, "registryStorage")["queueNames"] == "deliveryQueues"
    assert module_params(MAIN, "replicas")["queueNames"] == "deliveryQueues"
    assert module_params(REPLICA, "registryStorage")["queueNames"] == "queueNames"


# --- identity -------------------------------------------------------------------------------------


def test_every_region_app_runs_as_the_identity_that_may_write_every_region_storage() -> None:
    principal = property_of("appIdentity", "properties", "principalId")
    assert module_params(MAIN, "registryStorage")["principalId"] == principal
    assert module_params(MAIN, "replicas")["identityPrincipalId"] == principal
    assert module_params(MAIN, "replicas")["identityId"] == property_of("appIdentity", "id")
    assert module_params(MAIN, "functionApp")["identityId"] == property_of("appIdentity", "id")
    assert module_params(REPLICA, "registryStorage")["principalId"] == "identityPrincipalId"
    assert module_params(REPLICA, "functionApp")["identityId"] == "identityId"
    assert module_params(REPLICA, "eventTopic")["publisherPrincipalId"] == "identityPrincipalId"
    roles = variable(REGISTRY_STORAGE, "roles")
    assert {BLOB_DATA_CONTRIBUTOR, TABLE_DATA_CONTRIBUTOR, QUEUE_DATA_CONTRIBUTOR} <= set(roles.values())
    assignments = body(resource(REGISTRY_STORAGE, "roleAssignments"))
    assert assignments["properties"]["principalId"] == "principalId" and assignments["scope"] == "account"


# --- SKU ------------------------------------------------------------------------------------------


def test_replica_locations_are_refused_unless_the_sku_is_premium() -> None:
    sku = tree(REPLICA)["parameters"]["registrySku"]
    assert allowed(sku) == ["Premium"]
    assert sku["default"] is None  # no default to fall back on
    # any(): Bicep's compile-time check would otherwise reject Basic and Standard; ARM checks the value
    passed = module_params(MAIN, "replicas")["registrySku"]
    assert passed == {"function": {"type": "any", "parameters": {"value": "sku"}}}
    assert allowed(tree(MAIN)["parameters"]["sku"]) == ["Basic", "Standard", "Premium"]
    loop = tree(MAIN)["modules"]["replicas"]["config"]
    assert loop["loop_type"]["detail"]["array_name"] == "replicaLocations" and loop["condition"] is None
    assert tree(MAIN)["parameters"]["replicaLocations"]["default"] == []


# --- Front Door -----------------------------------------------------------------------------------


def test_front_door_routes_one_login_server_to_every_region() -> None:
    for name in ("frontDoor", "homeOrigin", "frontDoorRoute"):
        assert tree(MAIN)["modules"][name]["config"]["condition"] == not_empty_replicas(), name
    profile = body(resource(FRONT_DOOR, "profile"))
    assert profile["sku"] == {"name": "Standard_AzureFrontDoor"}
    group = body(resource(FRONT_DOOR, "originGroup"))["properties"]
    assert group["healthProbeSettings"]["probePath"] == "probePath"
    assert group["healthProbeSettings"]["probeProtocol"] == "Https"
    assert group["loadBalancingSettings"]["additionalLatencyInMilliseconds"] == 50  # latency-based
    assert module_params(MAIN, "frontDoor")["probePath"] == "frontDoorProbePath"
    assert tree(MAIN)["parameters"]["frontDoorProbePath"]["default"] == "/acr/health"
    # every region's app is an origin: the home app here, each replica's in its region module
    assert module_params(MAIN, "homeOrigin")["hostName"] == output_of("functionApp", "defaultHostName")
    assert module_params(REPLICA, "origin")["hostName"] == output_of("functionApp", "defaultHostName")
    origin = body(resource(ORIGIN, "origin"))["properties"]
    assert origin["originHostHeader"] == "hostName" and origin["enforceCertificateNameCheck"] is True
    route = body(resource(ROUTE, "route"))["properties"]
    assert route["patternsToMatch"] == ["/*"] and route["forwardingProtocol"] == "HttpsOnly"
    assert "cacheConfiguration" not in route
    assert tree(MAIN)["modules"]["frontDoorRoute"]["config"]["config"]["dependsOn"] == ["homeOrigin", "replicas"]
    # tokens name the one login server in every region, and the deployment reports it
    login = variable(MAIN, "registrySettings")["REGISTRY_LOGIN_SERVER"]["operator"]["operands"]
    assert login["false_value"] == output_of("frontDoor", "hostName")
    output = tree(MAIN)["outputs"]["REGISTRY_LOGIN_SERVER"]["value"]["operator"]["operands"]
    assert output["false_value"] == output_of("frontDoor", "hostName")
    assert output["true_value"] == output_of("functionApp", "defaultHostName")
