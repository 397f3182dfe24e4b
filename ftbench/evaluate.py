"""Moved to `ftbench.engine.evaluate`, `ftbench.results.records` (docs/architecture.md); this module is kept for one release
so that plugins importing it keep working. Import from the new home."""

from ftbench.engine.evaluate import (pre_logits, predict_logits, classification_metrics)
from ftbench.results.records import (encode_correct, decode_correct)

__all__ = ["pre_logits", "predict_logits", "classification_metrics", "encode_correct", "decode_correct"]
