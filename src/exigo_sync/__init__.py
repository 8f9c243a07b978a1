"""exigo-sync."""
