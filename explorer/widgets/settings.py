"""Persistent window state through QSettings, with a typed table of defaults.

Tests and the X11 end-to-end test pass an INI file of their own (`Settings.at(path)` or the
`EXPLORER_SETTINGS` environment variable), so they never touch a user's real settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ENV_PATH = "EXPLORER_SETTINGS"
MAX_RECENT = 8

DEFAULTS: dict[str, object] = {
    "window/geometry": QByteArray(),
    "window/state": QByteArray(),
    "files/recent": [],
    "session/last": "",  # JSON of the last session, restored when the same model opens again
}


class Settings:
    """Typed access to the few values the window keeps between runs."""

    def __init__(self, qsettings: QSettings):
        self._q = qsettings

    @classmethod
    def at(cls, path: str | Path) -> Settings:
        """Settings in an INI file of one's choosing."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    @classmethod
    def default(cls) -> Settings:
        """$EXPLORER_SETTINGS if set, else the user's settings of this program."""
        path = os.environ.get(ENV_PATH)
        if path:
            return cls.at(path)
        return cls(QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "latent-explorer", "explorer"))

    def value(self, key: str):
        default = DEFAULTS[key]
        value = self._q.value(key, default)
        if isinstance(default, list):
            # QSettings returns a lone string for a one-item list and None for an empty one.
            return [] if value is None else [value] if isinstance(value, str) else list(value)
        if isinstance(default, QByteArray):
            return value if isinstance(value, QByteArray) else QByteArray()
        return type(default)(value)

    def set_value(self, key: str, value) -> None:
        if key not in DEFAULTS:
            raise KeyError(f"unknown setting {key!r}")
        self._q.setValue(key, value)

    def recent_files(self) -> list[str]:
        return [str(p) for p in self.value("files/recent")]

    def add_recent_file(self, path: str) -> list[str]:
        files = [path] + [p for p in self.recent_files() if p != path]
        self.set_value("files/recent", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def sync(self) -> None:
        self._q.sync()

    @property
    def path(self) -> str:
        return self._q.fileName()
