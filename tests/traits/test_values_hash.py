"""values_hash: one 64-bit hash per traits row, stable across pandas versions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_hub.profile.traits.write import _NULL, _combined


def _column_hashes(columns: list[np.ndarray]) -> list[np.ndarray]:
    null_hash = pd.util.hash_array(np.array([_NULL], dtype=object))[0]
    hashed = []
    for column in columns:
        hashes = pd.util.hash_array(column)
        hashes[pd.isna(column)] = null_hash
        hashed.append(hashes)
    return hashed


def test_rows_hash_as_pandas_hashes_a_frame_of_their_texts() -> None:
    rng = np.random.default_rng(3)
    columns = []
    for _ in range(12):
        texts = rng.integers(0, 20, 5_000).astype(str).astype(object)
        texts[rng.random(5_000) < 0.3] = None
        columns.append(texts)
    frame = pd.DataFrame({i: np.where(pd.isna(c), _NULL, c) for i, c in enumerate(columns)})
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
    assert np.array_equal(_combined(_column_hashes(columns)), expected)


def test_a_stored_hash_keeps_its_value() -> None:
    columns = [np.array(["12.5000", None], dtype=object), np.array([None, "x"], dtype=object)]
    assert [f"{h:016x}" for h in _combined(_column_hashes(columns)).tolist()] == [
        "2c21984631b32b30",  # what pandas 2.3 hashed: rows written before stay unchanged
        "88158df3c7918b91",
    ]
