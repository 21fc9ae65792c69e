"""Training: the trainer (loop, optimiser, AMP, DDP, logging), checkpoint writing, schedules, the collapse monitor."""
