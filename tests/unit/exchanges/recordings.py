"""Reading the cryptofeed recordings in tests/fixtures/recordings (see NOTICE.md there)."""

from __future__ import annotations

from pathlib import Path

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"


def received_frames(name: str) -> list[str]:
    """Every frame the client received, exactly as recorded, in order.

    The first line is the connect line, lines with `` <- `` are frames the client sent, and every
    other non-empty line is ``<receipt time>: <frame>``.
    """
    frames = []
    for line in (RECORDINGS / name).read_text().splitlines()[1:]:
        if not line.strip() or " <- " in line.split(": ", 1)[0]:
            continue
        frames.append(line.split(": ", 1)[1])
    return frames
