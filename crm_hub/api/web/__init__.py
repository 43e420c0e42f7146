"""Staff pages under ``/ui/``: server-rendered, policy-shaped views of the read API.

``install_pages(app)`` adds the routes and the packaged static files; every page asks
:mod:`crm_hub.api.policy` exactly as the JSON routes do.
"""

from crm_hub.api.web.pages import install_pages

__all__ = ["install_pages"]
