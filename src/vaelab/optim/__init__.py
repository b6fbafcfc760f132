"""Learning-rate schedules that torch.optim.lr_scheduler does not ship as one class."""
