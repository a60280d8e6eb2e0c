"""N-gram overlap of outputs with references: corpus BLEU and chrF (sacrebleu, the `bench` extra), the metrics of
the tasks that rewrite text or describe images."""

from __future__ import annotations

from collections import Counter
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


def _char_ngrams(text: str, order: int) -> list[Counter]:
    text = "".join(text.split())
    return [Counter(text[i : i + n] for i in range(len(text) - n + 1)) for n in range(1, order + 1)]


def sentence_chrf(hypothesis: str, reference: str, *, order: int = 6, beta: float = 2.0) -> float:
    """chrF of one sentence (Popovic 2015; 0..100): character n-gram (1..order, whitespace removed) precision and
    recall, each averaged over the orders present, combined as F-beta: sacrebleu's sentence chrF with its defaults
    (tests/evaluation/test_overlap.py), without needing the extra."""
    precisions, recalls = [], []
    for hyp, ref in zip(_char_ngrams(hypothesis, order), _char_ngrams(reference, order)):
        if hyp and ref:
            match = sum((hyp & ref).values())
            precisions.append(match / sum(hyp.values()))
            recalls.append(match / sum(ref.values()))
    if not precisions:
        return 100.0 if hypothesis.split() == reference.split() else 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


def consensus(candidates: Sequence[str]) -> int:
    """Index of the candidate with the highest mean sentence chrF against the others: minimum Bayes risk decoding
    with chrF as the utility (Kumar & Byrne 2004), the first of equals."""
    if len(candidates) <= 2:
        return 0
    scores = [
        sum(sentence_chrf(c, o) for j, o in enumerate(candidates) if j != i)
        for i, c in enumerate(candidates)
    ]
    return max(range(len(candidates)), key=scores.__getitem__)
