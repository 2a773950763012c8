"""The engine: networks, formats and rendering. It imports no Qt."""

from .errors import KernelBuildError, LoadError
from .model import Model, ModelInfo, load_model

__all__ = ["KernelBuildError", "LoadError", "Model", "ModelInfo", "load_model"]
