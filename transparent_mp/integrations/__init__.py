"""Shims for libraries that reach multiprocessing their own way, one module per library."""
