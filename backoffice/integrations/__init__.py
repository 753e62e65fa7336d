"""Clients of the external services (Shoptet, Comgate) and their credentials."""
