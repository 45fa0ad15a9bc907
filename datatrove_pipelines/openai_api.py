"""The one rule for OpenAI-compatible base URLs (vLLM, SGLang, hosted APIs), used by every client in the project.

Users paste either form, ``http://host:8000`` or ``http://host:8000/v1``; both name the same server. The annotate
oracles, the web judge, the SFT/DPO generators and the eval backend all resolve routes through :func:`api_url`.
"""

from __future__ import annotations


def api_root(base_url: str) -> str:
    """The server root: ``base_url`` without trailing slashes and without a trailing ``/v1``."""
    root = (base_url or "").strip().rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def api_url(base_url: str, route: str = "") -> str:
    """``<root>/v1/<route>`` for a base URL given with or without ``/v1`` (``route`` e.g. ``chat/completions``)."""
    return f"{api_root(base_url)}/v1/{route.lstrip('/')}" if route else f"{api_root(base_url)}/v1"
