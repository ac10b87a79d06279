"""Identity and access: passwords, registry tokens, Entra ID tokens, permissions and their store."""
