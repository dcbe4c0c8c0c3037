"""Preprocessing (image -> input tensor) and postprocessing (scores -> categories)."""
