"""How the suite sees the platform, free of pytest.

Both the fixtures (which hand observations to checks) and the remediation
helpers use this package, so a check and its helper never judge the same
fact by two rules. Anything that cannot be looked at is said once, as
`Unobservable` (raised) or `Unobserved` (returned in a sample), with the
reason and what to do.
"""
