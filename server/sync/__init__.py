"""The sync engine: upstream client, auth, throttling, planning, fetching, committing."""
