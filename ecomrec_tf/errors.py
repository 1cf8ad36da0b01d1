"""Errors the command line reports as one line, importable without TensorFlow."""


class ConfigError(ValueError):
    """A config file or option that cannot describe a run; the message names the file and the field."""
