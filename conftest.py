"""Loads the suite's plugins: fixtures/ (options, inventory, clients, samples, verdicts) and reports/."""
pytest_plugins = [
    "fixtures.judgement",
    "fixtures.plugin",
    "fixtures.clients",
    "fixtures.prefetch",
    "fixtures.samplers",
    "fixtures.resource_samples",
    "fixtures.host_samples",
    "fixtures.engine_samples",
    "fixtures.database_samples",
    "fixtures.log_samples",
    "fixtures.rerun",
    "fixtures.remediate",
    "fixtures.gate",
    "reports.plugin",
    "reports.allure_labels",
    "reports.html_story",
]
