"""Exceptions the engine raises for input a user can fix; the UI shows their message as is."""


class DIPError(ValueError):
    """Base class: the message names the parameter, what was received and what to do."""


class ConfigError(DIPError):
    """A network, fit or preset setting is invalid."""


class ImageError(DIPError):
    """An image or mask cannot be used (not an image, truncated, too large, too small, wrong size)."""


class RunFolderError(DIPError):
    """A saved run's folder cannot be read: a file is missing, truncated or not what it should be.

    The message names the run (its folder's name, never a server path), the file and what is wrong, e.g.
    ``Run 20260101-denoise-ab12cd could not be read: metrics.json is not a JSON object (it holds a list).``

    Parameters
    ----------
    reason : str
        What is wrong, naming the file; the whole message when ``run_id`` is empty.
    run_id : str, optional
        The run's folder name (never a server path); prefixed to the message when given.

    Attributes
    ----------
    run_id : str
        The run's folder name, kept for listings ("" when not given).
    reason : str
        The message without the run, kept for listings.
    """

    def __init__(self, reason: str, *, run_id: str = ""):
        super().__init__(f"Run {run_id} could not be read: {reason}" if run_id else reason)
        self.run_id = run_id
        self.reason = reason
