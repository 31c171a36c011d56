"""The package version, here (not only in `advbench/__init__.py`) so modules that record it with
their results need not import the top-level package, which imports the engine lazily."""

__version__ = "0.1.0"
