"""Pure array kernels used by the models (no classes, no model imports)."""
