"""Pictures of a VAE: image grids (torchvision ``make_grid``) shared by callbacks and eval."""
