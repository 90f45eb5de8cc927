"""nbjax: a differentiable JAX reimplementation of nanoBragg."""
