"""Loads the suite's plugins; see DESIGN in README.md for what each does."""
pytest_plugins = [
    "fixtures.plugin",
    "fixtures.clients",
    "fixtures.samplers",
    "reports.plugin",
]
