"""The dataset contract: find, load and validate; the CDNOW converter; the
simulator with planted truth."""

from workbench.data.dataset import Dataset, ValidationReport, connect, load_dataset, validate_dataset
from workbench.data.paths import project_root, resolve_dataset

__all__ = ["Dataset", "ValidationReport", "connect", "load_dataset", "project_root", "resolve_dataset", "validate_dataset"]
