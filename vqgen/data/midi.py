"""Standard MIDI Files for the instrument-notes builder: one track of notes on one General MIDI program."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from vqgen.errors import ConfigError

__all__ = ["midi_file"]


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(
    program: int, notes: Sequence[tuple[int, int, int, int, int]], end_ms: int | None = None
) -> bytes:
    """A Standard MIDI File (format 0, one track, channel 1, 1 tick = 1 ms) that plays ``notes`` on GM
    ``program``.

    ``notes``: ``(on_ms, off_ms, silence_ms, pitch, velocity)``: note-on at ``on_ms``, note-off at ``off_ms``,
    All Sound Off (controller 120, which cuts the release) at ``silence_ms``. The track ends at ``end_ms``
    (default: the last event).
    """
    if not 0 <= int(program) <= 127:
        raise ConfigError(f"program must be 0-127, got {program}")
    events = []  # (ms, order, bytes): at one time, sound off and note off come before the next note-on
    for on, off, silence, pitch, velocity in notes:
        if not (0 <= on < off <= silence and 0 <= pitch <= 127 and 1 <= velocity <= 127):
            raise ConfigError(
                f"bad note (on={on}, off={off}, silence={silence}, pitch={pitch}, vel={velocity})"
            )
        events += [(on, 2, bytes((0x90, pitch, velocity))), (off, 1, bytes((0x80, pitch, 0)))]
        events.append((silence, 0, bytes((0xB0, 120, 0))))
    events.sort(key=lambda event: (event[0], event[1]))
    # Tempo 1,000,000 us per quarter note at 1,000 ticks per quarter: one tick is one millisecond.
    track = bytearray(
        b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big") + bytes((0x00, 0xC0, int(program)))
    )
    now = 0
    for ms, _, data in events:
        track += _vlq(ms - now) + data
        now = ms
    end = max(now, int(end_ms) if end_ms is not None else now)
    track += _vlq(end - now) + b"\xff\x2f\x00"
    return (
        b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)
    )
