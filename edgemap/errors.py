"""The one exception type for problems the user can fix (bad input, missing files).

The CLI turns it into a single line on stderr and a non-zero exit; anything else is a bug
and keeps its traceback.
"""


class EdgemapError(Exception):
    """A user-facing error: the message alone must say what is wrong and where."""
