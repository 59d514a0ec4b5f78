"""The engine's code tables, read once from the Rust extension (they are defined
only there, in ``rust/engine/types.rs``)."""

from __future__ import annotations

from aftershock import _engine

__all__ = ["CODES", "labels"]

#: ``{column: {text: code}}`` for side, size_type, order_type, tif, intrabar,
#: reason (fills), status and reject_reason (orders).
CODES: dict[str, dict[str, int]] = _engine.codes()


def labels(column: str) -> list[str | None]:
    """Text by code (list index); ``None`` for unused codes and for the empty text
    of "no reason"."""
    table = CODES[column]
    out: list[str | None] = [None] * (max(table.values()) + 1)
    for text, code in table.items():
        out[code] = text or None
    return out
