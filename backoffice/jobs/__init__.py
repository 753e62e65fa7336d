"""Recurring jobs: the catalog's runtime rules, the Enabled record and the schedule overrides, and
their sync with Prefect."""
