"""Training: the loop, its configuration, distributed set-up and the command line."""
