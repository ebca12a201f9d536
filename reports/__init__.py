"""Report plugins. They read only the metadata a check attached (user_properties)."""
