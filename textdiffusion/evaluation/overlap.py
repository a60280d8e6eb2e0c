"""N-gram overlap of outputs with references: corpus BLEU and chrF (sacrebleu, the `bench` extra), the metrics of
the tasks that rewrite text or describe images."""

from __future__ import annotations

from collections.abc import Sequence


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults, 0..100) against all references; {} without sacrebleu.

    Args:
        hypotheses: N outputs.
        references: N lists of references, the same number R for every output.
    """
    try:
        import sacrebleu
    except ImportError:
        return {}
    hyps, streams = list(hypotheses), [list(c) for c in zip(*references)]  # streams: (R, N)
    bleu = sacrebleu.corpus_bleu(hyps, streams, force=True)  # force: JFLEG is tokenised on purpose
    return {"bleu": bleu.score, "chrf": sacrebleu.corpus_chrf(hyps, streams).score}


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0..100); NaN without sacrebleu."""
    return bleu_chrf(hypotheses, references).get("bleu", float("nan"))


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (0..100); NaN without sacrebleu."""
    return bleu_chrf(hypotheses, references).get("chrf", float("nan"))
