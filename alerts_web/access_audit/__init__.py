"""Who read which patient's data: one row per read, in the database, never in the logs."""
