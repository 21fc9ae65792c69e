"""Training: the trainer, checkpoints, schedules and the ``train`` command."""
