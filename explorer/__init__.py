"""Latent Explorer: an interactive explorer for ProGAN / StyleGAN / StyleGAN2 / StyleGAN3 generators."""

__version__ = "0.1.0"
