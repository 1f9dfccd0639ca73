"""Log sources -> canonical interactions. Importing this package registers every connector."""

from connectors import (  # noqa: F401  (importing registers each connector)
    langfuse,
    nvidia,
    openai_batch,
    openai_jsonl,
    snips,
    spool,
    tabular,
)
from connectors.base import REGISTRY, Connector, ReadContext, SourceError
from connectors.detect import detect_format, resolve_paths

__all__ = ["REGISTRY", "Connector", "ReadContext", "SourceError", "detect_format", "resolve_paths"]
