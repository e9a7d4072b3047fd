"""newsbeam pipeline package: command line, options and pipeline assembly."""

from schemas import __version__  # noqa: F401
