"""The exception for invalid user input, which the command line reports in one line with exit code 2."""


class InputError(Exception):
    """Invalid user input: a missing path, an out-of-range option, a malformed file.

    The message names the value and the fix.
    """
