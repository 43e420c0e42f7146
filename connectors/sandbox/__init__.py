"""Loopback emulation of the vendor APIs crm-hub connects to (``crm-hub sandbox``).

Square, Mailchimp, Typeform, QuickBooks Online and HubSpot, each under its own URL prefix,
over a deterministic world of people with a story (see ``README.md`` beside this file).
Re-exports only; the code lives in the modules.
"""

from __future__ import annotations

from connectors.sandbox.app import Sandbox
from connectors.sandbox.config import Credentials, PageLimits, RateLimit, SandboxConfig
from connectors.sandbox.faults import KINDS as FAULT_KINDS
from connectors.sandbox.faults import Fault, FaultError
from connectors.sandbox.mutate import MutationError, MutationReport, mutate
from connectors.sandbox.server import SandboxProcess, SandboxServer
from connectors.sandbox.truth import TruthRow, truth_csv_chunks, truth_rows
from connectors.sandbox.webhooks import SignedWebhook, build_signed_webhook, sign, verify_signature
from connectors.sandbox.world import World, build_world

__all__ = [
    "FAULT_KINDS",
    "Credentials",
    "Fault",
    "FaultError",
    "MutationError",
    "MutationReport",
    "PageLimits",
    "RateLimit",
    "Sandbox",
    "SandboxConfig",
    "SandboxProcess",
    "SandboxServer",
    "SignedWebhook",
    "TruthRow",
    "World",
    "build_signed_webhook",
    "build_world",
    "mutate",
    "sign",
    "truth_csv_chunks",
    "truth_rows",
    "verify_signature",
]
