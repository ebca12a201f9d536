"""Report plugins. They read the one record each check result carries (fixtures/record.py), nothing else."""
