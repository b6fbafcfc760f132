"""Baselines a VAE is compared against in the same units: a deterministic autoencoder, its
denoising variant, PCA and probabilistic PCA (closed form, no optimiser steps)."""
