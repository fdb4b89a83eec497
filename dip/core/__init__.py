"""The engine: images and degradations, forward operators, the hourglass network, the one fit loop, tasks and
presets, and what a run writes. Everything the app and the command line need, nothing else."""
