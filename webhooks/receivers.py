"""Signal receivers: tenant status changes that notify subscribers."""
