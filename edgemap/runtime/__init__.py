"""Inference backends, one module per engine, found by name. Import-light: numpy only at this level."""
