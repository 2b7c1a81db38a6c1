"""Registry table for the statistic kernel family (filled in as kernels land)."""
