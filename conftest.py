"""Loads the suite's plugins: fixtures/ (options, inventory, clients, samples, verdicts) and reports/."""
pytest_plugins = [
    "fixtures.plugin",
    "fixtures.clients",
    "fixtures.samplers",
    "reports.plugin",
]
