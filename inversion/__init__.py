"""GAN inversion methods on the generator protocol (filled in by the inversion issues)."""
