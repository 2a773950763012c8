"""Typed errors the engine raises; the GUI and the CLI show their messages to people as they are."""


class LoadError(Exception):
    """A checkpoint could not be opened: the message says which file and what was wrong."""


class KernelBuildError(Exception):
    """A compiled kernel could not be built; the engine falls back to the reference ops."""
