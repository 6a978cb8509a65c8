"""JSON files that are written atomically and read with errors that name the file."""

import json
import os
from pathlib import Path

from ganforge.errors import InputError


def write_json_atomic(path: Path, values: dict) -> None:
    """Write `values` as JSON through a temporary file, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def read_json_object(path: Path) -> dict:
    """Read a JSON object, or raise InputError naming the file and the fix."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}; restore or remove the file") from None
    if not isinstance(values, dict):
        raise InputError(f"invalid {path}: expected a JSON object; restore or remove the file")
    return values
