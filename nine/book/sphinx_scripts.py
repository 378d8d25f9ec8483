"""A Sphinx extension of the book: each script once per page.

sphinx-thebe is set up twice by the Jupyter Book / sphinx-book-theme pair, so every page carried its
configuration script twice and the browser stopped at the second ("Identifier 'THEBE_JS_URL' has
already been declared"). Listed in ``_config.yml`` under ``sphinx: extra_extensions``.
"""

from __future__ import annotations

from typing import Any


def unique_scripts(scripts: list[Any]) -> list[Any]:
    """``scripts`` in order, each file or inline body once (the first kept, with its attributes)."""
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", str(script)) or "", attributes.get("body", ""))  # inline: None or ""
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
