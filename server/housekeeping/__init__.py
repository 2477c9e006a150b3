"""Housekeeping tasks: garbage collection (`collect.py`) and repair (`repair.py`)."""
