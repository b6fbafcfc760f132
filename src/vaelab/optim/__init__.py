"""The optimiser and learning-rate scheduler that the LightningModule returns."""
