# azd postprovision hook for Windows (azure.yaml); the same as infra/hooks/postprovision.sh, which
# says why. Creates the Key Vault secrets the function app's settings name, each only if absent.
# Needs PowerShell 7.3 or later (.NET makes the key: no openssl) and az, logged in.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$vault = $env:KEY_VAULT_NAME
if (-not $vault) { throw 'KEY_VAULT_NAME is not set: provision first' }
$attempts = if ($env:KEY_VAULT_ATTEMPTS) { [int]$env:KEY_VAULT_ATTEMPTS } else { 10 }
$retrySeconds = if ($env:KEY_VAULT_RETRY_SECONDS) { [int]$env:KEY_VAULT_RETRY_SECONDS } else { 30 }

function Test-Enabled([string]$value) { return $value -eq 'true' -or $value -eq '1' }

# Role assignments made by the provisioning take a few minutes to reach Key Vault.
$names = $null
for ($attempt = 1; $null -eq $names; $attempt++) {
    $listed = az keyvault secret list --vault-name $vault --query '[].name' --output tsv
    if ($LASTEXITCODE -eq 0) {
        $names = @($listed | Where-Object { $_ })
    } elseif ($attempt -ge $attempts) {
        throw "cannot list the secrets of Key Vault ${vault}: you need Key Vault Secrets Officer on it"
    } else {
        Write-Warning "Key Vault $vault refused the listing (role assignments still propagating?); retrying in ${retrySeconds}s"
        Start-Sleep -Seconds $retrySeconds
    }
}

$work = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName())
New-Item -ItemType Directory -Path $work | Out-Null
$script:created = $false

# Store $value as secret $name unless the vault has it (through a file: not on a command line).
function New-SecretIfAbsent([string]$name, [scriptblock]$makeValue, [string]$contentType) {
    if ($names -contains $name) {
        Write-Host "Key Vault $vault already holds $name"
        return
    }
    $file = Join-Path $work $name
    [System.IO.File]::WriteAllText($file, (& $makeValue))
    az keyvault secret set --vault-name $vault --name $name --file $file --content-type $contentType --output none
    if ($LASTEXITCODE -ne 0) { throw "could not create $name in Key Vault $vault" }
    Write-Host "Key Vault ${vault}: created $name"
    $script:created = $true
}

function New-Password {
    return [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(33))
}

try {
    # The registry's tokens are signed with an EC P-256 key (ES256).
    New-SecretIfAbsent 'token-signing-key' {
        $key = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
        try { $key.ExportPkcs8PrivateKeyPem() } finally { $key.Dispose() }
    } 'application/x-pem-file'

    if (Test-Enabled $env:ADMIN_USER_ENABLED) {
        New-SecretIfAbsent 'admin-password' { New-Password } 'text/plain'
        if (Test-Enabled $env:ADMIN_PASSWORD2_ENABLED) {
            New-SecretIfAbsent 'admin-password2' { New-Password } 'text/plain'
        }
    }
} finally {
    Remove-Item -Recurse -Force $work
}

# A reference that did not resolve when the settings were applied is fetched again on a restart.
# Every region's app (REPLICA_FUNCTION_APP_NAMES: the replica regions') references the same vault.
if ($script:created -and $env:AZURE_FUNCTION_APP_NAME -and $env:AZURE_RESOURCE_GROUP) {
    $subscription = if ($env:AZURE_SUBSCRIPTION_ID) { @('--subscription', $env:AZURE_SUBSCRIPTION_ID) } else { @() }
    $apps = @($env:AZURE_FUNCTION_APP_NAME) + @("$env:REPLICA_FUNCTION_APP_NAMES" -split '\s+' | Where-Object { $_ })
    foreach ($app in $apps) {
        az functionapp restart @subscription --resource-group $env:AZURE_RESOURCE_GROUP --name $app --output none
        if ($LASTEXITCODE -ne 0) { throw "could not restart $app" }
        Write-Host "restarted $app so that it reads the new secrets"
    }
}
