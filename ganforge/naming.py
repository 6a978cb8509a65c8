"""Model names and versions as the model repository stores them: models/<name>/<version>/."""

import re

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Version folders are positive integers without leading zeros that fit in a signed 64-bit integer.
VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,17}")
MAX_VERSION = 10**18 - 1


def model_name_problem(name: str) -> str | None:
    """Return why `name` is not a valid model name, or None when it is valid.

    Valid names have 1 to 128 characters from [A-Za-z0-9._-] and are not "." or "..", so a
    name is always a single folder name.
    """
    if not MODEL_NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        return f"invalid model name {name!r}: use 1 to 128 characters from [A-Za-z0-9._-], not '.' or '..'"
    return None


def version_problem(version: int) -> str | None:
    """Return why `version` is not a valid model version, or None when it is valid."""
    if not 1 <= version <= MAX_VERSION:
        return f"invalid model version {version}: use an integer from 1 to {MAX_VERSION}"
    return None
