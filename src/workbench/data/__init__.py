"""The dataset contract: find, map, load and validate; connections to
backends; the CDNOW converter; the simulator with planted truth."""

from workbench.data.backends import connect
from workbench.data.dataset import Dataset, ValidationReport, load_dataset, validate_dataset
from workbench.data.paths import locate_dataset, project_root, resolve_dataset

__all__ = ["Dataset", "ValidationReport", "connect", "load_dataset", "locate_dataset", "project_root", "resolve_dataset", "validate_dataset"]
