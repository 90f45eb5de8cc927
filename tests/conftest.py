"""Test session set-up: nbjax's float64 parity needs JAX's 64-bit mode, which the library never
turns on by itself (the CLI does it for its own process); tests may, for their own process."""

import jax

jax.config.update("jax_enable_x64", True)
