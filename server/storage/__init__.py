"""Content-addressed blob files: temp -> verify -> rename."""
