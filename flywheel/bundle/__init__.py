"""Model bundles: a trained student's directory holds everything from raw request to served answer."""

from flywheel.bundle.predictor import BundlePredictor, load_predictor
from flywheel.bundle.spec import (
    BUNDLE_FILE,
    Bundle,
    build_bundle,
    default_bundle,
    read_bundle,
    write_bundle,
)

__all__ = [
    "BUNDLE_FILE",
    "Bundle",
    "BundlePredictor",
    "build_bundle",
    "default_bundle",
    "load_predictor",
    "read_bundle",
    "write_bundle",
]
