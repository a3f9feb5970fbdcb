class ExportError(Exception):
    """An expected failure: reported to the user as one message, without a traceback."""
