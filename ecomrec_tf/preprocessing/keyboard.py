"""Which keys sit next to which on a QWERTY keyboard: what a typo hits instead."""

from __future__ import annotations

KEYBOARD_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict[str, str]:
    near: dict[str, str] = {}
    for row_index, row in enumerate(KEYBOARD_ROWS):
        for col, char in enumerate(row):
            keys = row[max(col - 1, 0) : col] + row[col + 1 : col + 2]
            for other in (row_index - 1, row_index + 1):
                if 0 <= other < len(KEYBOARD_ROWS):
                    keys += KEYBOARD_ROWS[other][max(col - 1, 0) : col + 1]
            near[char] = keys
    return near


KEY_NEIGHBOURS = _neighbours()
