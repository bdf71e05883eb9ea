"""The paper's figures (METHOD.md §6), one function each, drawn from the validation inputs.

:mod:`.registry` lists them (light: importable without matplotlib, for the Snakefile); one module per group
of figures holds their drawing functions, :mod:`.plotting` the style and helpers they share, :mod:`.inputs`
the lazily read inputs:

* :mod:`.passbands`: the passbands (Fig. 4) and the non-linearity of extinction (Appendix B);
* :mod:`.training`: the training set (Fig. 5) and the training history;
* :mod:`.photometry`: colour-magnitude (Figs. 6-7) and colour-colour diagrams (Figs. 8-9);
* :mod:`.reddening`: the reddening vector (Figs. 10-11) and the refitted reddening;
* :mod:`.residuals`: scores (Figs. 12-13), residual maps and the χ² distribution;
* :mod:`.covariance`: the Eq. 4 covariance of one star (Fig. 2).

and, drawn from the inference stage's table of stars rather than the validation inputs,
:mod:`.inference`: the inferred parameters against the truth, their calibration (PIT, coverage), Kiel and
colour-magnitude diagrams, the inferred reddening on the sky and example posteriors
(:func:`.inference.render_all`).
"""

from .registry import FIGURES, Spec, options, render, render_doc, run_figure

__all__ = ["FIGURES", "Spec", "options", "render", "render_doc", "run_figure"]
