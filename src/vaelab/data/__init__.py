"""LightningDataModules, one per dataset; each exposes ``dims`` (C, H, W) and ``num_classes``."""
