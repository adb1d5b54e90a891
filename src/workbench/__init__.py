"""workbench: from users to customers and revenue, and co-creation and retention.

Layers (data flows one way; each imports only those to its left):
``data`` -> ``tables`` -> ``models`` -> ``plots`` -> ``reports`` -> ``cli``.
"""

from workbench.errors import DataError, WorkbenchError, WorkbenchWarning

__version__ = "0.1.0"

__all__ = ["DataError", "WorkbenchError", "WorkbenchWarning", "__version__"]
