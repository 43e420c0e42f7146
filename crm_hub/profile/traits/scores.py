"""Population-relative scores: RFM quintiles, named RFM segments, churn risk.

The cut points (and the median rhythm used for one-order customers) are fitted on every
active master with orders during the day's first (full) run and kept in the store with the
model state, so an incremental run later that day scores its few masters exactly as the full
run would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_RHYTHM_DAYS", "fit_scores", "rfm_segment", "score_traits"]

DEFAULT_RHYTHM_DAYS = 30.0  # when no master has ordered on two different days
_QUANTILES = [0.2, 0.4, 0.6, 0.8]

# (recency scores, frequency scores) → segment name; covers all 25 pairs.
_SEGMENTS: tuple[tuple[set[int], set[int], str], ...] = (
    ({5}, {4, 5}, "champions"),
    ({3, 4}, {4, 5}, "loyal_customers"),
    ({4, 5}, {2, 3}, "potential_loyalists"),
    ({5}, {1}, "new_customers"),
    ({4}, {1}, "promising"),
    ({3}, {3}, "need_attention"),
    ({3}, {1, 2}, "about_to_sleep"),
    ({1, 2}, {3, 4}, "at_risk"),
    ({1, 2}, {5}, "cant_lose"),
    ({1, 2}, {1, 2}, "hibernating"),
)


def rfm_segment(recency: int, frequency: int) -> str:
    """The segment name of an (R, F) pair, e.g. (5, 5) → champions, (1, 1) → hibernating."""
    for rs, fs, name in _SEGMENTS:
        if recency in rs and frequency in fs:
            return name
    raise ValueError(f"RFM scores out of range: R{recency} F{frequency}")


# _SEGMENT_TABLE[r, f]: the segment of scores (r, f); row and column 0 unused.
_SEGMENT_TABLE = np.array(
    [[None] * 6] + [[None] + [rfm_segment(r, f) for f in range(1, 6)] for r in range(1, 6)],
    dtype=object,
)


def _inputs(traits: pd.DataFrame) -> pd.DataFrame:
    """Recency (days), frequency (orders) and monetary (net spend) of masters with orders."""
    has = (traits["orders_count"] > 0) & traits["days_since_last_order"].notna()
    return pd.DataFrame(
        {
            "r": traits.loc[has, "days_since_last_order"].astype("float64"),
            "f": traits.loc[has, "orders_count"].astype("float64"),
            "m": traits.loc[has, "_spend"].astype("Float64").fillna(0).astype("float64"),
        }
    )


def _rhythm(traits: pd.DataFrame) -> pd.Series:
    """Average days between order days, for masters who ordered on two days or more."""
    days = traits["_active_days"].astype("float64")
    span = (traits["_last_day"] - traits["_first_day"]).astype("Float64").astype("float64")
    rhythm = span / (days - 1)
    return rhythm.where(days >= 2).clip(lower=1.0)


def fit_scores(traits: pd.DataFrame) -> dict[str, Any]:
    """Cut points of the RFM quintiles and the median rhythm, from the whole population."""
    data = _inputs(traits)
    rhythm = _rhythm(traits).dropna()
    model: dict[str, Any] = {
        "median_rhythm_days": float(rhythm.median()) if len(rhythm) else DEFAULT_RHYTHM_DAYS
    }
    for column in ("r", "f", "m"):
        values = data[column].to_numpy()
        cuts = np.quantile(values, _QUANTILES) if len(values) else np.zeros(4)
        model[column] = [float(c) for c in cuts]
    return model


def score_traits(traits: pd.DataFrame, model: dict[str, Any]) -> pd.DataFrame:
    """rfm_recency/frequency/monetary, rfm_segment and churn_risk per code."""
    out = pd.DataFrame(index=traits.index)
    data = _inputs(traits)

    def above(column: str) -> np.ndarray[Any, Any]:
        cuts = np.asarray(model[column], dtype="float64")
        counts: np.ndarray[Any, Any] = (data[column].to_numpy()[:, None] > cuts[None, :]).sum(1)
        return counts

    recency = 5 - above("r")
    frequency = 1 + above("f")
    out["rfm_recency"] = pd.Series(recency, index=data.index).reindex(out.index).astype("Int64")
    out["rfm_frequency"] = pd.Series(frequency, index=data.index).reindex(out.index).astype("Int64")
    out["rfm_monetary"] = (
        pd.Series(1 + above("m"), index=data.index).reindex(out.index).astype("Int64")
    )
    out["rfm_segment"] = pd.Series(
        _SEGMENT_TABLE[recency, frequency], index=data.index, dtype="object"
    ).reindex(out.index)

    rhythm = _rhythm(traits).fillna(float(model["median_rhythm_days"]))
    days = traits["days_since_last_order"].astype("Float64").astype("float64")
    risk = ((days / rhythm - 1.0) / 2.0).clip(0.0, 1.0).round(4)
    out["churn_risk"] = risk.astype("Float64")
    return out
