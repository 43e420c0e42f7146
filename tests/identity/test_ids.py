"""Content-derived master ids keep the ULID text of the blake2b hash they always had."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from ulid import ULID

from crm_hub.identity.ids import content_ids, master_id_for

KEYS = [("pos", "17"), ("news", "a-9"), ("", ""), ("crm", "Zoë\x1f7"), ("pos", "x" * 300)]


def _ulid_id(source: str, source_id: str) -> str:
    digest = hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=16).digest()
    return f"m_{ULID.from_bytes(digest)}"


@pytest.mark.parametrize(("source", "source_id"), KEYS)
def test_master_id_is_the_ulid_text_of_the_hash(source: str, source_id: str) -> None:
    assert master_id_for(source, source_id) == _ulid_id(source, source_id)


def test_content_ids_hash_each_clusters_first_member() -> None:
    members = pd.DataFrame(
        {
            "cluster": [0, 0, 1, 2, 2],
            "source": [k[0] for k in KEYS],
            "source_id": [k[1] for k in KEYS],
            "row": range(5),
        }
    )
    ids = content_ids(members)
    assert ids.to_dict() == {0: _ulid_id(*KEYS[0]), 1: _ulid_id(*KEYS[2]), 2: _ulid_id(*KEYS[3])}
