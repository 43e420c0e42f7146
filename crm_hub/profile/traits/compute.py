"""From the frames the loader read to one row of traits per master (pure: no store access)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from crm_hub.profile.traits.activity import (
    currency_spend,
    line_traits,
    main_currency,
    order_traits,
)
from crm_hub.profile.traits.clv import fit_clv, predict_clv
from crm_hub.profile.traits.load import Frames
from crm_hub.profile.traits.person import (
    email_traits,
    epoch_day,
    invoice_currency,
    money_owed,
    person_traits,
)
from crm_hub.profile.traits.registry import TRAITS
from crm_hub.profile.traits.scores import fit_scores, score_traits

__all__ = ["finish", "fit_model", "per_master"]


def fit_model(traits: pd.DataFrame, today: date) -> dict[str, Any]:
    """The day's population model: RFM cut points, median rhythm, CLV parameters."""
    scores = fit_scores(traits)
    with_churn = traits.assign(churn_risk=score_traits(traits, scores)["churn_risk"])
    return {"day": today.isoformat(), "scores": scores, "clv": fit_clv(with_churn)}


def per_master(frames: Frames, today: date) -> pd.DataFrame:
    """Every trait that depends on one master's own rows (index: code), before the model.

    Masters are independent here, so disjoint scopes can be computed apart and concatenated.
    """
    n = len(frames.master_ids)
    day = epoch_day(today)
    spend = currency_spend(frames.orders)
    main = main_currency(spend)
    main = main.combine_first(invoice_currency(frames.invoices)) if n else main
    orders = order_traits(frames.orders, spend, n, day)
    traits = pd.concat(
        [
            orders,
            line_traits(frames.items, frames.categories, main, n),
            money_owed(frames.invoices, frames.payments, main, orders["_spend"], n, day),
            person_traits(frames.customers, frames.profiles, n, today),
            email_traits(frames.customers, frames.events, n),
        ],
        axis=1,
    )
    currency = main.reindex(traits.index)
    traits["currency"] = currency.where(currency.notna() & (currency != ""), None)
    return traits


def finish(
    traits: pd.DataFrame, today: date, model: dict[str, Any] | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every trait per master (index: code) from ``per_master``'s, and the model used: the
    population's scores and CLV (the model is fitted here when None).

    Money traits are fixed-point integers (1/10,000), times epoch seconds, dates ``date``.
    """
    if model is None:
        model = fit_model(traits, today)
    traits = traits.join(score_traits(traits, model["scores"]))
    traits["predicted_clv"] = predict_clv(traits, model["clv"])
    traits["total_spend"] = traits["_spend"]
    traits["average_order_value"] = traits["_aov"]
    traits["open_balance"] = traits["_open"]
    traits["overdue_amount"] = traits["_overdue"]
    traits["ltv"] = traits["_ltv"]
    return traits[list(TRAITS)], model
