"""Local fakes of the external services (Shoptet, Comgate) speaking their real wire formats."""
