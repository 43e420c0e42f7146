"""Predicted customer lifetime value for the next 12 months.

The model is the standard one for non-contractual businesses (a cafe: people just stop
coming): BG/NBD (Fader, Hardie & Lee 2005) predicts how many orders a customer will place in
the next 365 days from their frequency (order days - 1), recency (first to last order day)
and age T (first order day to today); Gamma-Gamma predicts the value of those orders from the
customer's average order value. Both are fitted by ``lifetimes`` (0.11) on a random sample of
at most ``SAMPLE`` customers with orders, once a day; the fitted parameters are kept with the
model state and reused by that day's incremental runs.

A fit that does not converge is tried once more with a slightly looser gradient tolerance
(``TOLERANCES``). When the model cannot be fitted (too few customers or repeat customers, a
failed or non-finite fit, any warning), or yields a non-finite value for a customer, the
heuristic is used instead: orders per day of tenure (at least 30 days) x 365 x average order
value x (1 - churn risk). Values are rounded to cents; undiscounted.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from crm_hub.logging import get_logger

__all__ = [
    "HORIZON_DAYS",
    "MIN_CUSTOMERS",
    "SAMPLE",
    "expected_orders",
    "expected_value",
    "fit_clv",
    "predict_clv",
]

log = get_logger(__name__)

HORIZON_DAYS = 365
SAMPLE = 50_000
MIN_CUSTOMERS = 200  # customers with orders needed to fit
MIN_REPEAT = 50  # of them, repeat customers with a positive average order value
# Gradient tolerances tried in turn: lifetimes' own, then one a little looser. At 1 M customers
# the Gamma-Gamma fit stopped with scipy's "precision loss" at a gradient of 3e-7, an optimum
# in all but name, which lifetimes reports as a failure.
TOLERANCES = (1e-7, 1e-6)


def _inputs(traits: pd.DataFrame) -> pd.DataFrame:
    has = traits["orders_count"] > 0
    first = traits.loc[has, "_first_day"].astype("float64")
    last = traits.loc[has, "_last_day"].astype("float64")
    today = last + traits.loc[has, "days_since_last_order"].astype("float64")
    return pd.DataFrame(
        {
            "frequency": (traits.loc[has, "_active_days"] - 1).astype("float64").clip(lower=0),
            "recency": (last - first).clip(lower=0),
            "T": (today - first).clip(lower=0),
            "monetary": traits.loc[has, "_aov"].astype("Float64").fillna(0).astype("float64")
            / 10_000,
        }
    )


def fit_clv(traits: pd.DataFrame, *, seed: int = 0) -> dict[str, Any]:
    """Fit BG/NBD + Gamma-Gamma on a sample; ``{"model": "heuristic"}`` when it cannot."""
    data = _inputs(traits)
    data = data[data["T"] > 0]
    if len(data) < MIN_CUSTOMERS:
        return {"model": "heuristic", "reason": f"{len(data)} customers with orders"}
    if len(data) > SAMPLE:
        data = data.sample(SAMPLE, random_state=seed)
    repeat = data[(data["frequency"] > 0) & (data["monetary"] > 0)]
    if len(repeat) < MIN_REPEAT:
        return {"model": "heuristic", "reason": f"{len(repeat)} repeat customers"}
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bg = _fitted(BetaGeoFitter, data["frequency"], data["recency"], data["T"])
            gg = _fitted(GammaGammaFitter, repeat["frequency"], repeat["monetary"])
    except Exception as exc:  # any failure of the fit: the documented heuristic instead
        log.warning("CLV model fit failed; using the heuristic", error=repr(exc))
        return {"model": "heuristic", "reason": f"fit failed: {type(exc).__name__}: {exc}"}
    bg_params = {k: float(v) for k, v in bg.params_.items()}
    gg_params = {k: float(v) for k, v in gg.params_.items()}
    values = [*bg_params.values(), *gg_params.values()]
    if not all(np.isfinite(v) and v > 0 for v in values) or gg_params["q"] <= 1:
        return {"model": "heuristic", "reason": f"parameters out of range: {values}"}
    # Warnings (e.g. standard errors of a flat likelihood) are kept, not raised: the
    # parameters are what is used, and each prediction is checked for being finite.
    notes = sorted({str(w.message) for w in caught})
    return {"model": "bg_nbd_gamma_gamma", "bg": bg_params, "gg": gg_params,
            "fitted_on": len(data), "fit_warnings": notes}  # fmt: skip


def _fitted(make: Callable[..., Any], *columns: pd.Series) -> Any:
    """A lifetimes fitter fitted at the first of ``TOLERANCES`` that converges. What lifetimes
    prints of a failed fit (the optimiser's whole result, on stdout) is kept out of the output
    of the command that runs the stage; the error of the last try is raised."""
    failure: Exception | None = None
    for tol in TOLERANCES:
        fitter = make(penalizer_coef=0.001)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fitter.fit(*columns, tol=tol)
        except Exception as exc:  # lifetimes' ConvergenceError, or what scipy raised
            failure = exc
            continue
        return fitter
    assert failure is not None
    raise failure


def _heuristic(traits: pd.DataFrame, data: pd.DataFrame) -> pd.Series:
    tenure = data["T"].clip(lower=30)
    churn = traits.loc[data.index, "churn_risk"].astype("Float64").fillna(0).astype("float64")
    orders = traits.loc[data.index, "orders_count"].astype("float64")
    expected = orders / tenure * HORIZON_DAYS * (1 - churn)
    return expected * data["monetary"].clip(lower=0)


def expected_orders(
    params: dict[str, float], t: float, frequency: Any, recency: Any, age: Any
) -> np.ndarray[Any, Any]:
    """BG/NBD: expected orders in the next ``t`` days (Fader, Hardie & Lee 2005, eq. 10).

    The same formula as lifetimes' ``conditional_expected_number_of_purchases_up_to_time``,
    written out so that incremental runs need scipy only, not lifetimes.
    """
    from scipy.special import hyp2f1

    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x, t_x, big_t = (np.asarray(v, dtype="float64") for v in (frequency, recency, age))
    first = (a + b + x - 1) / (a - 1)
    hyper = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
    second = 1 - hyper * ((alpha + big_t) / (alpha + big_t + t)) ** (r + x)
    third = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    return np.asarray(first * second / third, dtype="float64")


def expected_value(params: dict[str, float], frequency: Any, monetary: Any) -> np.ndarray[Any, Any]:
    """Gamma-Gamma: expected value of a customer's future orders (Fader & Hardie 2013)."""
    p, q, v = params["p"], params["q"], params["v"]
    x, m = np.asarray(frequency, dtype="float64"), np.asarray(monetary, dtype="float64")
    weight = p * x / (p * x + q - 1)
    return np.asarray((1 - weight) * (v * p / (q - 1)) + weight * m, dtype="float64")


def _model(data: pd.DataFrame, model: dict[str, Any]) -> pd.Series:
    with np.errstate(all="ignore"):
        orders = expected_orders(model["bg"], HORIZON_DAYS, data["frequency"], data["recency"],
                                 data["T"])  # fmt: skip
        value = expected_value(model["gg"], data["frequency"], data["monetary"].clip(lower=0))
        return pd.Series(orders * value, index=data.index)


def predict_clv(traits: pd.DataFrame, model: dict[str, Any]) -> pd.Series:
    """predicted_clv per code in fixed point (1/10,000), NA for masters without orders."""
    data = _inputs(traits)
    clv = _heuristic(traits, data)
    if model.get("model") == "bg_nbd_gamma_gamma" and len(data):
        predicted = _model(data, model)
        fine = np.isfinite(predicted) & (predicted >= 0)
        clv = predicted.where(fine, clv)
    cents = np.rint(clv.to_numpy() * 100).astype(np.int64) * 100
    return pd.Series(cents, index=data.index).reindex(traits.index).astype("Int64")
