"""Colours by band name: the default colour lists of the validation, their column stems and plot labels.

Light (no numpy): the figure registry reads the default colours when the Snakefile is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..bands import BAND_NAMES
from ..errors import ConfigError

#: Colours of neighbouring bands in wavelength, (X, Y) for X - Y.
NEIGHBOUR_COLOURS: tuple[tuple[str, str], ...] = (
    ("gaia_bp", "gaia_rp"),
    ("ps1_g", "ps1_r"),
    ("ps1_r", "ps1_i"),
    ("ps1_i", "ps1_z"),
    ("ps1_z", "ps1_y"),
    ("ps1_y", "tmass_j"),
    ("tmass_j", "tmass_h"),
    ("tmass_h", "tmass_ks"),
    ("tmass_ks", "unwise_w1"),
    ("unwise_w1", "unwise_w2"),
)
#: Default colours: the neighbours, then every band against G (the colour basis).
COLOURS: tuple[tuple[str, str], ...] = (*NEIGHBOUR_COLOURS, *((b, "gaia_g") for b in BAND_NAMES[1:]))

#: Short plot names of the bands.
SHORT = {
    "gaia_g": "G",
    "gaia_bp": "BP",
    "gaia_rp": "RP",
    "ps1_g": "g",
    "ps1_r": "r",
    "ps1_i": "i",
    "ps1_z": "z",
    "ps1_y": "y",
    "tmass_j": "J",
    "tmass_h": "H",
    "tmass_ks": "Ks",
    "unwise_w1": "W1",
    "unwise_w2": "W2",
}


def colour_name(x: str, y: str) -> str:
    """Column stem of colour X - Y, e.g. ``ps1_r-ps1_i``."""
    return f"{x}-{y}"


def colour_label(x: str, y: str) -> str:
    """Plot label of colour X - Y, e.g. ``r − i``."""
    return f"{SHORT[x]} − {SHORT[y]}"


def parse_colours(colours: Sequence[Sequence[str]] | None) -> list[tuple[str, str]]:
    """Colours as (X, Y) band-name pairs, checked (a config error names the bad entry)."""
    if colours is None:
        return list(COLOURS)
    out = []
    for i, c in enumerate(colours):
        if len(c) != 2 or c[0] == c[1]:
            raise ConfigError(f"validation.colours[{i}]: expected two different band names, got {list(c)}")
        for b in c:
            if b not in BAND_NAMES:
                raise ConfigError(f"validation.colours[{i}]: unknown band {b!r}; valid: {', '.join(BAND_NAMES)}")
        out.append((str(c[0]), str(c[1])))
    return out
