"""Catalog stage: quality cuts, cross-matches and the training catalog."""
