"""Exceptions the engine raises for input a user can fix; the UI shows their message as is."""


class DIPError(ValueError):
    """Base class: the message names the parameter, what was received and what to do."""


class ConfigError(DIPError):
    """A network, fit or preset setting is invalid."""


class ImageError(DIPError):
    """An image or mask cannot be used (not an image, truncated, too large, too small, wrong size)."""
