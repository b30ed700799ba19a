"""An app module whose state the main program changes before starting processes."""

FACTOR = 1
NAMES = ["import time"]
