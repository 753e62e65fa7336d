"""backoffice-tasks: the scheduled-task queue and the recurring jobs of the e-shop back office."""
