"""Tokenizers, corpora, packing and (for denoising) corruption of text."""

from textdiffusion.data.corpus import (
    DataError,
    expand_paths,
    read_documents,
    read_hf_dataset,
    read_line_pairs,
)
from textdiffusion.data.packing import BatchStream, chunk_stream, pack_documents, split_stream
from textdiffusion.data.tokenizers import SPECIAL_TOKENS, Tokenizer, TokenizerError

__all__ = [
    "SPECIAL_TOKENS",
    "BatchStream",
    "DataError",
    "Tokenizer",
    "TokenizerError",
    "chunk_stream",
    "expand_paths",
    "pack_documents",
    "read_documents",
    "read_line_pairs",
    "read_hf_dataset",
    "split_stream",
]
