"""CLV model (lifetimes fit, our prediction formulas) and the registry's contract with the docs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_hub.profile.traits import TRAITS, json_schema, readme_table
from crm_hub.profile.traits.clv import expected_orders, expected_value, fit_clv, predict_clv
from crm_hub.profile.traits.scores import rfm_segment
from crm_hub.store.schema import traits as traits_table

README = Path(__file__).parents[2] / "README.md"


def _population(size: int, seed: int = 3) -> pd.DataFrame:
    """Customers drawn from a BG/NBD process, shaped like the stage's internal trait frame."""
    from lifetimes.generate_data import beta_geometric_nbd_model

    np.random.seed(seed)
    data = beta_geometric_nbd_model(365, 0.25, 4.0, 0.8, 2.5, size=size)
    rng = np.random.default_rng(seed)
    today = 20_000
    first = today - data["T"].to_numpy()
    return pd.DataFrame({
        "orders_count": (data["frequency"] + 1).astype(int),
        "_active_days": (data["frequency"] + 1).astype(int),
        "_first_day": pd.array(first.astype(int), dtype="Int64"),
        "_last_day": pd.array((first + data["recency"].to_numpy()).astype(int), dtype="Int64"),
        "days_since_last_order": pd.array(
            (data["T"] - data["recency"]).round().astype(int), dtype="Int64"),
        "_aov": pd.array(rng.gamma(6, 1.5, size) * 10_000, dtype="Float64").round().astype(
            "Int64"),
        "churn_risk": pd.array(np.zeros(size), dtype="Float64"),
    })  # fmt: skip


def test_bg_nbd_gamma_gamma_fits_and_predicts_like_lifetimes() -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    people = _population(3_000)
    model = fit_clv(people)
    assert model["model"] == "bg_nbd_gamma_gamma", model
    bg, gg = BetaGeoFitter(), GammaGammaFitter()
    bg.params_, gg.params_ = pd.Series(model["bg"]), pd.Series(model["gg"])
    x = people["_active_days"] - 1
    recency = (people["_last_day"] - people["_first_day"]).astype(float)
    age = (recency + people["days_since_last_order"]).astype(float)
    money = people["_aov"].astype(float) / 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bg.conditional_expected_number_of_purchases_up_to_time(365, x, recency, age)
        value = gg.conditional_expected_average_profit(x, money)
    np.testing.assert_allclose(expected_orders(model["bg"], 365, x, recency, age), theirs,
                               rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(expected_value(model["gg"], x, money), value, rtol=1e-9)
    clv = predict_clv(people, model).astype(float) / 10_000
    assert clv.notna().all() and (clv >= 0).all()
    # More past orders, same recency pattern: a higher expected value.
    assert clv[x >= 5].mean() > clv[x == 0].mean()


def _fails_at_lifetimes_tolerance(monkeypatch: pytest.MonkeyPatch, always: bool) -> None:
    """Gamma-Gamma fits fail as lifetimes fails them (printing the optimiser's result) at its
    own tolerance, or at every one when ``always``."""
    from lifetimes import GammaGammaFitter
    from lifetimes.utils import ConvergenceError

    fit = GammaGammaFitter.fit

    def flaky(self: GammaGammaFitter, *args: object, tol: float = 1e-7, **kwargs: object) -> object:
        if always or tol == 1e-7:
            print("message: Desired error not necessarily achieved due to precision loss.")
            raise ConvergenceError("The model did not converge.")
        return fit(self, *args, tol=tol, **kwargs)

    monkeypatch.setattr(GammaGammaFitter, "fit", flaky)


def test_a_fit_stopped_by_precision_loss_is_tried_again_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails_at_lifetimes_tolerance(monkeypatch, always=False)
    assert fit_clv(_population(3_000))["model"] == "bg_nbd_gamma_gamma"
    assert capsys.readouterr().out == ""  # lifetimes' print stays out of the command's output


def test_a_fit_failing_at_every_tolerance_uses_the_heuristic_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails_at_lifetimes_tolerance(monkeypatch, always=True)
    model = fit_clv(_population(3_000))
    assert model["model"] == "heuristic" and "ConvergenceError" in model["reason"]
    assert capsys.readouterr().out == ""


def test_too_few_customers_use_the_documented_heuristic() -> None:
    assert fit_clv(_population(50))["model"] == "heuristic"


@pytest.mark.parametrize(("r", "f", "name"), [(5, 5, "champions"), (1, 1, "hibernating"),
                         (3, 3, "need_attention"), (1, 5, "cant_lose"), (4, 1, "promising")],
                         ids=lambda v: str(v))  # fmt: skip
def test_rfm_segment_names(r: int, f: int, name: str) -> None:
    assert rfm_segment(r, f) == name


def test_every_rfm_pair_has_a_segment() -> None:
    assert all(rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6))


def test_registry_covers_exactly_the_traits_columns() -> None:
    bookkeeping = {"master_id", "values_hash", "computed_at", "change_seq", "run_id"}
    assert set(TRAITS) == {c.name for c in traits_table.columns} - bookkeeping
    assert set(json_schema()["properties"]) == set(TRAITS) | {"master_id"}


def test_readme_trait_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- traits:start -->\n(.*?)\n<!-- traits:end -->", text, re.S)
    assert found, "README.md lacks the <!-- traits:start --> ... <!-- traits:end --> table"
    assert found.group(1) == readme_table(), (
        "README trait table is stale: replace it with crm_hub.profile.traits.readme_table()"
    )
