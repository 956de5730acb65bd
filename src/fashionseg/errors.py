"""The one exception type users see as a clean message (no stack trace) from the command line."""


class FashionsegError(Exception):
    """A problem the user can fix: the message names the file, field and value, and what to do next."""
