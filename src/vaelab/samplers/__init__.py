"""Ex-post samplers: a density fitted to a trained model's latent codes after training, drawn
from instead of the prior p(z) by vaelab-eval's samples, pictures and FID (``sampler=``)."""
