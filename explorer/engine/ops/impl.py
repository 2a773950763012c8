"""Which implementation of the ops to run: the fast paths, or the plain reference for A/B checks.

Set `EXPLORER_REFERENCE_OPS=1` in the environment (or call `force_reference_ops(True)`) to run the
step-by-step reference definitions everywhere.
"""

import os

_forced: bool | None = None


def use_reference_ops() -> bool:
    """True when the reference ops are forced by `force_reference_ops` or the environment."""
    if _forced is not None:
        return _forced
    return os.environ.get("EXPLORER_REFERENCE_OPS", "") not in ("", "0")


def force_reference_ops(value: bool | None) -> None:
    """Force the reference ops on (True) or off (False); None goes back to the environment."""
    global _forced
    _forced = value


def kernel_state() -> str:
    """What the ops run as, for the GUI and logs: 'reference' when forced, else 'fast'."""
    return "reference" if use_reference_ops() else "fast"
