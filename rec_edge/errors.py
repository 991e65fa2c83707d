"""Every exception rec-edge raises on purpose.

Each message says what was received, what is allowed, and how to fix it. The CLI prints a
``RecEdgeError`` as one line (no traceback unless ``--debug``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AccuracyGateError",
    "BundleError",
    "ConfigError",
    "DataError",
    "ExportError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "OutputExistsError",
    "ProviderError",
    "RecEdgeError",
    "RunError",
]


class RecEdgeError(Exception):
    """Base class of every rec-edge error."""


class ConfigError(RecEdgeError, ValueError):
    """A configuration value is invalid."""


class DataError(RecEdgeError, ValueError):
    """Input data is invalid. Carries every problem found, each naming its file, line and field."""

    MAX_SHOWN = 20

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        shown = self.problems[: self.MAX_SHOWN]
        more = len(self.problems) - len(shown)
        text = (
            shown[0]
            if len(shown) == 1
            else f"{len(self.problems)} problems:\n  " + "\n  ".join(shown)
        )
        if more > 0:
            text += f"\n  ... and {more} more"
        super().__init__(text)


class ModelNotFoundError(RecEdgeError, FileNotFoundError):
    """A model name or folder could not be resolved."""


class MissingDependencyError(RecEdgeError, ImportError):
    """An optional dependency (an extra) is not installed."""


class OutputExistsError(RecEdgeError, FileExistsError):
    """An output folder exists and --force was not given."""


class OutputError(RecEdgeError, OSError):
    """An output could not be written (a full disk, a folder without permission)."""


class RunError(RecEdgeError):
    """A training run folder is missing, incomplete or corrupt."""


class ExportError(RecEdgeError):
    """Exporting, optimizing or quantizing a model failed."""


class AccuracyGateError(ExportError):
    """No quantization recipe stayed within the allowed accuracy drop."""


class BundleError(RecEdgeError):
    """A bundle is missing files, fails its checksums, or has an unsupported schema."""


class ProviderError(RecEdgeError, ValueError):
    """An onnxruntime execution provider is unknown or not available."""
