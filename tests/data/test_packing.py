from __future__ import annotations

import numpy as np
import pytest

from textdiffusion.data import BatchStream, chunk_stream, pack_documents, split_stream


def test_pack_and_split():
    stream = pack_documents([[1, 2], [], [3]], eos_id=9)
    assert stream.tolist() == [1, 2, 9, 3, 9]
    tokens = np.arange(100, dtype=np.int32)
    train, valid = split_stream(tokens, valid_fraction=0.1, seq_len=8)
    assert len(valid) == 10 and np.array_equal(np.concatenate([train, valid]), tokens)
    assert chunk_stream(tokens, 30).shape == (3, 30)
    with pytest.raises(ValueError, match="too few"):
        split_stream(tokens[:10], valid_fraction=0.5, seq_len=8)


def test_batch_stream_is_reproducible_and_resumable():
    tokens = np.arange(1000, dtype=np.int32)
    a = BatchStream(tokens, seq_len=10, batch_size=4, seed=3)
    batches = [a.next_batch() for _ in range(60)]  # crosses several epochs
    assert batches[0].shape == (4, 10) and batches[0].dtype == np.int64
    # windows are contiguous runs of the stream
    assert np.all(np.diff(batches[0], axis=1) == 1)
    b = BatchStream(tokens, seq_len=10, batch_size=4, seed=3)
    for _ in range(25):
        b.next_batch()
    state = b.state_dict()
    c = BatchStream(tokens, seq_len=10, batch_size=4, seed=3)
    c.load_state_dict(state)
    for i in range(25, 60):
        assert np.array_equal(c.next_batch(), batches[i])


def test_ranks_split_the_global_batch():
    tokens = np.arange(1000, dtype=np.int32)
    full = BatchStream(tokens, seq_len=10, batch_size=4, seed=1).next_batch()
    parts = [
        BatchStream(tokens, seq_len=10, batch_size=4, seed=1, rank=r, world_size=2).next_batch()
        for r in (0, 1)
    ]
    assert np.array_equal(np.concatenate([parts[0], parts[1]])[np.argsort([0, 2, 1, 3])], full)


def test_too_little_data_is_a_clear_error():
    with pytest.raises(ValueError, match="lower --batch-size"):
        BatchStream(np.arange(50, dtype=np.int32), seq_len=10, batch_size=8)
