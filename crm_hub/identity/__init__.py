"""Identity resolution: which source records are the same person.

Public entry: `resolve`. Extension points are registries: `register_blocking_key`,
`register_comparison`, `register_rule`, `register_veto`; master ids come from an `IdMinter`.
The engine modules depend on no store; `stage` runs the engine as the resolve stage over the
store, and `manage` holds what people do to identities (overrides, review, explain).
"""

from __future__ import annotations

from crm_hub.identity.blocking import register_blocking_key
from crm_hub.identity.comparisons import register_comparison
from crm_hub.identity.evaluation import pairwise_scores
from crm_hub.identity.ids import IdMinter, content_ids, master_id_for
from crm_hub.identity.overrides import Overrides, RecordKey
from crm_hub.identity.resolve import Progress, Resolution, ResolutionStats, resolve
from crm_hub.identity.rules import register_rule, register_veto
from crm_hub.identity.settings import MatchSettings

__all__ = [
    "IdMinter",
    "MatchSettings",
    "Overrides",
    "Progress",
    "RecordKey",
    "Resolution",
    "ResolutionStats",
    "content_ids",
    "master_id_for",
    "pairwise_scores",
    "register_blocking_key",
    "register_comparison",
    "register_rule",
    "register_veto",
    "resolve",
]
