"""Per-tenant data keys: every tenant's Temporal payloads are encrypted with its own key, wrapped by
the platform key; deleting the tenant destroys the key (crypto-shredding)."""
