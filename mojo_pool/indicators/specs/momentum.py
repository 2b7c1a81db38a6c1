"""Registry table for the momentum kernel family (filled in as kernels land)."""
