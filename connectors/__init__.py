"""Log sources -> canonical interactions. Importing this package registers every connector."""

from connectors import openai_jsonl  # noqa: F401  (registers)
from connectors.base import REGISTRY, Connector, ReadContext, SourceError

__all__ = ["REGISTRY", "Connector", "ReadContext", "SourceError"]
