"""Event handlers for the tenant lifecycle (registered in events.registry)."""
