"""One error family, so a caller catches `JetsonSegError` and shows the message.

Every message says what is wrong and, where it can, what to change. Subclasses tell which part
refused: the model description, a model file, an engine, optimizer artefacts or a setting.
"""

from __future__ import annotations


class JetsonSegError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(JetsonSegError, ValueError):
    """A setting (parameter, command-line option) is not acceptable."""


class ModelError(JetsonSegError):
    """A model or its description (model.json) is missing, unreadable or inconsistent."""


class EngineError(JetsonSegError, RuntimeError):
    """An engine cannot load or run a model on this machine."""


class ArtefactError(JetsonSegError):
    """Optimizer output is missing, corrupt, locked by another run or does not reproduce."""


class TargetUnavailable(ModelError):
    """A source cannot be turned into the asked optimizer target (the message says why)."""
