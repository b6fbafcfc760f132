"""Baselines a VAE is compared against in the same units, as latent-variable models trained by
the same LightningModule: a deterministic autoencoder, its denoising variant, PCA and
probabilistic PCA (fitted in closed form, no optimiser steps)."""
