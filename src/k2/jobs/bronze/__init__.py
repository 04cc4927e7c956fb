"""Bronze: every raw record kept as sent, decoded by its own writer schema, exactly once."""
