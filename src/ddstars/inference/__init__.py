"""Photometric inference (paper Eq. 19): θ, distance modulus and reddening of stars without spectra.

:func:`posterior` takes a trained :class:`ddstars.model.StellarModel` (or a :class:`Grid` of it) and the stars'
photometry and parallaxes (:class:`Photometry`) and returns per-star summaries and joint posterior samples.
"""

from .engine import Grid, Photometry, posterior

__all__ = ["Grid", "Photometry", "posterior"]
