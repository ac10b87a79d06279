#!/bin/sh
# azd postprovision hook (azure.yaml; infra/hooks/postprovision.ps1 is the same for Windows).
#
# The function app's settings name Key Vault secrets that Bicep cannot create (a PEM key, random
# passwords): create each one that is absent, never replacing one that exists (that would sign
# everybody out, or change the admin password under its users). It runs after provisioning
# because the vault is made by it. Reads the azd environment: KEY_VAULT_NAME, ADMIN_USER_ENABLED,
# ADMIN_PASSWORD2_ENABLED, AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME,
# REPLICA_FUNCTION_APP_NAMES.
# Needs openssl and az, logged in with Key Vault Secrets Officer on the vault (Bicep grants it to
# AZURE_PRINCIPAL_ID).
set -eu

vault="${KEY_VAULT_NAME:?KEY_VAULT_NAME is not set: provision first}"
# Role assignments made by the provisioning take a few minutes to reach Key Vault.
attempts="${KEY_VAULT_ATTEMPTS:-10}"
retry_seconds="${KEY_VAULT_RETRY_SECONDS:-30}"

enabled() {
    case "$1" in
        [Tt][Rr][Uu][Ee] | 1) return 0 ;;
        *) return 1 ;;
    esac
}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

attempt=1
until az keyvault secret list --vault-name "$vault" --query "[].name" --output tsv >"$work/names"; do
    if [ "$attempt" -ge "$attempts" ]; then
        echo "cannot list the secrets of Key Vault $vault: you need Key Vault Secrets Officer on it" >&2
        exit 1
    fi
    echo "Key Vault $vault refused the listing (role assignments still propagating?); retrying in ${retry_seconds}s" >&2
    attempt=$((attempt + 1))
    sleep "$retry_seconds"
done

created=0

# create NAME CONTENT-TYPE: store the file $work/NAME as secret NAME unless the vault has it.
create() {
    if grep -qxF "$1" "$work/names"; then
        echo "Key Vault $vault already holds $1"
        return 0
    fi
    az keyvault secret set --vault-name "$vault" --name "$1" --file "$work/$1" --content-type "$2" --output none
    echo "Key Vault $vault: created $1"
    created=1
}

# The registry's tokens are signed with an EC P-256 key (ES256).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/token-signing-key"
create token-signing-key application/x-pem-file

if enabled "${ADMIN_USER_ENABLED:-false}"; then
    openssl rand -base64 33 | tr -d '\n' >"$work/admin-password"
    create admin-password text/plain
    if enabled "${ADMIN_PASSWORD2_ENABLED:-false}"; then
        openssl rand -base64 33 | tr -d '\n' >"$work/admin-password2"
        create admin-password2 text/plain
    fi
fi

# A reference that did not resolve when the settings were applied is fetched again on a restart.
# (Key Vault calls name the vault; this one needs azd's subscription, which may not be az's default.)
# Every region's app (REPLICA_FUNCTION_APP_NAMES: the replica regions') references the same vault.
if [ "$created" = 1 ] && [ -n "${AZURE_FUNCTION_APP_NAME:-}" ] && [ -n "${AZURE_RESOURCE_GROUP:-}" ]; then
    for app in "$AZURE_FUNCTION_APP_NAME" ${REPLICA_FUNCTION_APP_NAMES:-}; do
        az functionapp restart ${AZURE_SUBSCRIPTION_ID:+--subscription "$AZURE_SUBSCRIPTION_ID"} \
            --resource-group "$AZURE_RESOURCE_GROUP" --name "$app" --output none
        echo "restarted $app so that it reads the new secrets"
    done
fi
