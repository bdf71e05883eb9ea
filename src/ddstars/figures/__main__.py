"""``python -m ddstars.figures``: regenerate docs/figures.md from the registry."""

from .registry import DOC, render_doc

DOC.write_text(render_doc())
print(f"wrote {DOC}")
