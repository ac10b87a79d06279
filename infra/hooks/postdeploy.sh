#!/bin/sh
# azd postdeploy hook (azure.yaml; infra/hooks/postdeploy.ps1 is the same for Windows).
#
# 1. Event Grid subscriptions can only be created once the functions they target exist, so the
#    first provisioning leaves them out; from now on `azd provision` creates them.
# 2. azd deploys the `registry` service to the one app tagged with it, the home region's. The
#    replica regions' apps (REPLICA_FUNCTION_APP_NAMES, a Bicep output) get the same package here,
#    built on the server as azd's is (remote build).
# Reads the azd environment: REPLICA_FUNCTION_APP_NAMES, AZURE_RESOURCE_GROUP, AZURE_SUBSCRIPTION_ID.
set -eu

azd env set EVENT_SUBSCRIPTIONS_ENABLED true

replicas="${REPLICA_FUNCTION_APP_NAMES:-}"
if [ -z "$replicas" ]; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
azd package registry --output-path "$work/registry.zip" --no-prompt
for app in $replicas; do
    az functionapp deployment source config-zip ${AZURE_SUBSCRIPTION_ID:+--subscription "$AZURE_SUBSCRIPTION_ID"} \
        --resource-group "${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set: provision first}" --name "$app" \
        --src "$work/registry.zip" --build-remote true --output none
    echo "published the registry package to the replica region's app $app"
done
