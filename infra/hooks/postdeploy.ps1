# azd postdeploy hook for Windows (azure.yaml); infra/hooks/postdeploy.sh is the same for POSIX.
#
# 1. Event Grid subscriptions can only be created once the functions they target exist, so the
#    first provisioning leaves them out; from now on `azd provision` creates them.
# 2. azd deploys the `registry` service to the one app tagged with it, the home region's. The
#    replica regions' apps (REPLICA_FUNCTION_APP_NAMES, a Bicep output) get the same package here,
#    built on the server as azd's is (remote build).
$ErrorActionPreference = 'Stop'

azd env set EVENT_SUBSCRIPTIONS_ENABLED true
if ($LASTEXITCODE -ne 0) { throw 'azd env set failed' }

$replicas = @("$env:REPLICA_FUNCTION_APP_NAMES" -split '\s+' | Where-Object { $_ })
if ($replicas.Count -eq 0) { exit 0 }
if (-not $env:AZURE_RESOURCE_GROUP) { throw 'AZURE_RESOURCE_GROUP is not set: provision first' }

$work = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName())
New-Item -ItemType Directory -Path $work | Out-Null
try {
    $package = Join-Path $work 'registry.zip'
    azd package registry --output-path $package --no-prompt
    if ($LASTEXITCODE -ne 0) { throw 'azd package failed' }
    $subscription = if ($env:AZURE_SUBSCRIPTION_ID) { @('--subscription', $env:AZURE_SUBSCRIPTION_ID) } else { @() }
    foreach ($app in $replicas) {
        az functionapp deployment source config-zip @subscription --resource-group $env:AZURE_RESOURCE_GROUP `
            --name $app --src $package --build-remote true --output none
        if ($LASTEXITCODE -ne 0) { throw "could not publish to $app" }
        Write-Host "published the registry package to the replica region's app $app"
    }
} finally {
    Remove-Item -Recurse -Force $work
}
