"""Event handlers for deployment (registered in events.registry)."""
