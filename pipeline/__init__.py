"""newsbeam pipeline package: command line, options and pipeline assembly."""

__version__ = "0.1.0"
