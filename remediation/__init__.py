"""Remediation helpers: plain functions with a small CLI (`bin/nautilus-remediation`, which runs `-m remediation`).

Nothing here imports pytest. Every helper is a dry run unless called with
`--apply`; disruptive ones also ask for confirmation and write a diagnostics
bundle first.
"""
