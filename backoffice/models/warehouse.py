"""Transport boxes and picking-list bookkeeping. Filled in by the jobs work."""
