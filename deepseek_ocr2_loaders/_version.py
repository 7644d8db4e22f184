"""The package version, in one place: the page cache keys on it, so it must not import the package."""

__version__ = "0.1.0"
