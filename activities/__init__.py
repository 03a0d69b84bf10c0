"""Activities: every piece of I/O the workflows need. Each is idempotent and safe to retry."""
