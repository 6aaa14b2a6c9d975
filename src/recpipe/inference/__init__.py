"""Serving-side model code: numpy only, never torch (DESIGN.md §5, §10)."""
