"""One policy for every outbound connection a tenant can point somewhere (webhooks, LDAP, OIDC)
and for the operator's LLM and embedding servers: see `policy`, `http`, `gate`."""
