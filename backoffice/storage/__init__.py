"""The storage layer: every SQL statement of the project lives below this package."""
