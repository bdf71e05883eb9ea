"""ddstars: the data-driven stellar models of Green et al. (2021) as a Snakemake workflow."""

__version__ = "0.1.0"
