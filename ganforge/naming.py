"""Model names and versions as the model repository stores them: models/<name>/<version>/."""

import re

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def model_name_problem(name: str) -> str | None:
    """Return why `name` is not a valid model name, or None when it is valid.

    Valid names have 1 to 128 characters from [A-Za-z0-9._-] and are not "." or "..", so a
    name is always a single folder name.
    """
    if not MODEL_NAME_PATTERN.match(name) or name in (".", ".."):
        return f"invalid model name {name!r}: use 1 to 128 characters from [A-Za-z0-9._-], not '.' or '..'"
    return None
