"""The operational checks: one module per area of the troubleshooting guide."""
