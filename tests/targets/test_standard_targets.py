"""singer-sdk's standard target suite on the three crm-hub targets, against the sandbox.

The suite's streams carry no e-mail addresses, so Mailchimp and HubSpot reject their records
locally (reported, not sent); the webhook target posts every batch to the signed receiver. The
suite checks the Singer side: schema changes, key handling, odd data, the CLI.
"""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

from singer_sdk.testing import get_target_test_class

from connectors.sandbox import SandboxConfig, SandboxServer
from connectors.target_hubspot import TargetHubSpot
from connectors.target_mailchimp import TargetMailchimp
from connectors.target_webhook import TargetWebhook

# The suite takes its config when the class is built, so the sandbox starts at import.
_SANDBOX = SandboxServer(SandboxConfig(seed=7, customers=50)).start()
atexit.register(_SANDBOX.stop)
_INFO = _SANDBOX.info()
_REJECTIONS = str(Path(tempfile.mkdtemp(prefix="crm-hub-std-targets-")) / "rejected.jsonl")

TestTargetWebhook = get_target_test_class(
    TargetWebhook,
    config={
        "url": f"{_SANDBOX.vendor_url('webhook')}/standard",
        "secret": _INFO["vendors"]["webhook"]["secret"],
        "rejections_path": _REJECTIONS,
    },
)

TestTargetMailchimp = get_target_test_class(
    TargetMailchimp,
    config={
        "api_key": "sandbox-mailchimp-key-us21",
        "base_url": _SANDBOX.vendor_url("mailchimp"),
        "list_id": _INFO["vendors"]["mailchimp"]["list_ids"][0],
        "rejections_path": _REJECTIONS,
    },
)

TestTargetHubSpot = get_target_test_class(
    TargetHubSpot,
    config={
        "access_token": "sandbox-hubspot-token",
        "base_url": _SANDBOX.vendor_url("hubspot"),
        "rejections_path": _REJECTIONS,
    },
)
