"""Recurring jobs: the catalog's runtime rules, the Enabled record and its sync with Prefect."""
