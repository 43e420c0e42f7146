"""Analytics: campaign, sales-funnel and retention-cohort reports, stored as ``report_*`` tables.

Call :func:`compute_reports` after the profile stage; `crm-hub report` renders and charts them.
"""

from __future__ import annotations

from crm_hub.analytics.compute import PERIODS, compute_reports, read_report

__all__ = ["PERIODS", "compute_reports", "read_report"]
