"""The lab's tooling on top of the engine.

``bench`` (speed), ``reproduce`` (the paper's experiments), ``compare`` (two runs side by side), ``report`` (a run's
zip) and the figures they draw.
"""
