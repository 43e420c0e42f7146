from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from crm_hub.identity import Resolution, resolve


@pytest.fixture
def run() -> Callable[..., Resolution]:
    def go(rows: list[dict[str, str]], **kwargs: object) -> Resolution:
        return resolve(pd.DataFrame(rows), **kwargs)  # type: ignore[arg-type]

    return go
