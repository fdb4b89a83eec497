"""The engine: everything the app and the command line need, nothing else.

Images and degradations, forward operators, the hourglass network, the one fit loop, tasks and presets, and what a
run writes.
"""
