"""The contract every exchange package implements, and the records that cross it.

An exchange package (``k2.exchanges.<exchange>``) has the same modules in each exchange:

- ``wire.py``: the exchange's wire format in both directions: URLs, control requests the client
  sends, and ``render_*`` functions that produce frames exactly as the exchange sends them (the
  simulator speaks through these, and property tests round-trip through them);
- ``parse.py``: pure functions from one received frame (str) to :class:`ParsedFrame`;
- ``normalise.py``: :class:`RawTrade` → :class:`k2.domain.Trade` (canonical symbol, taker side,
  Decimal, UTC µs, deterministic ``message_id``);
- ``client.py``: the feed client (connect, subscribe, keep-alive, reconnect) built on
  :mod:`k2.transport.ws`;
- ``book.py``: the exchange's L2 book messages and the rule (checksum or sequence) that says
  whether a local :class:`~k2.exchanges.book.OrderBook` is still the exchange's book, on the
  verdicts of :mod:`k2.exchanges.booksync`.

Raw records keep every trade field exactly as the exchange sent it: decimal strings stay strings,
Kraken v1 times stay their exact string, Kraken v2 JSON numbers are kept as their exact decimal
text, integers (ids, ms/µs times, u64 connection ids) stay Python ints.

The records made once per trade or frame (:class:`Envelope`, :class:`RawTrade`,
:class:`ParsedFrame`) are named tuples: immutable like frozen dataclasses, but built several
times faster, which the ingest's per-trade budget of a few microseconds needs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Union, cast

if TYPE_CHECKING:
    from k2.exchanges.booksync import BookGap, BookUpdate

# A feed protocol (``kraken-v2``, ``binance-aggtrade``, ``kraken-rest``...): one of the
# registry's, :data:`k2.exchanges.PROTOCOLS`, the one list of them. A plain string here, so a
# new exchange's protocols need no edit of this module; the literal types an exchange package
# declares for its own protocols are held to the registry by a unit test.
Protocol_ = str
FieldValue = str | int | bool | None
# Ids and times are stored as Avro ``long``: a frame with an integer outside this range is
# malformed for K2 (dead-lettered with its text) rather than a record no writer can encode.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class Envelope(NamedTuple):
    """Where and when K2 received the frame a trade came in."""

    received_us: int  # receive time, µs since the epoch (UTC)
    connection_id: str  # K2's id for the WebSocket connection (exchange id when it sends one)
    position: int  # index of the frame within the connection, from 0
    protocol: Protocol_


def record_envelope(record: Mapping[str, Any]) -> Envelope:
    """The envelope a Kafka raw record (or a Bronze row) carries, as the ingest received it."""
    return Envelope(
        received_us=int(record["received_us"]),
        connection_id=str(record.get("connection_id")),
        position=int(record.get("position") or 0),
        protocol=cast(Any, record.get("protocol")),
    )


class RawTrade(NamedTuple):
    """One trade exactly as the exchange sent it, plus the ingest envelope.

    ``fields`` holds the exchange's own field names and values, unchanged (for Binance the keys are
    the single letters of the payload; for Kraken v1 the positional array gets the names of the
    documentation: price, volume, time, side, order_type, misc). ``native_symbol`` is the symbol
    as the exchange spells it in the frame, ``trade_key`` the exchange's per-symbol trade id if it
    has one (Binance ``t``/``a``, Kraken v2 ``trade_id``), and ``occurrence`` the index among
    identical trade tuples of one symbol (Kraken v1 only, see ``k2.exchanges.kraken.normalise``).
    """

    exchange: str
    native_symbol: str
    trade_key: int | None
    fields: Mapping[str, FieldValue]
    envelope: Envelope
    occurrence: int = 0
    snapshot: bool = False  # sent as part of a (re)subscribe snapshot


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that could not be parsed, kept whole for the dead-letter topic."""

    raw: str
    error: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Gap:
    """Trades a feed knows it missed: an exact id range where the exchange has ids."""

    exchange: str
    native_symbol: str
    first_missing: int
    last_missing: int
    # "sequence" (an id jump within a connection), "reconnect" (across one, or a restart) or
    # "history_check" (the exchange's history, read when the symbol stayed quiet after a
    # (re)connect, had newer trades)
    detected_by: str


class ControlKind(StrEnum):
    """The ``kind`` of a :class:`Control`, the same vocabulary for every exchange."""

    STATUS = "status"  # exchange status on connect (Kraken systemStatus / status)
    SUBSCRIBED = "subscribed"  # per-symbol subscription confirmed
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIPTION_REJECTED = "subscription_rejected"  # per-symbol refusal, detail["message"]
    HEARTBEAT = "heartbeat"
    PONG = "pong"  # answer to an application-level ping
    ACK = "ack"  # answer to a request that names no symbol (Binance {"result":...,"id":...})
    ERROR = "error"  # an error that names no symbol (rate limit, bad request)
    SERVER_SHUTDOWN = "server_shutdown"  # the exchange will close this connection soon
    CONNECTED = "connected"  # made by the client: a connection is open and subscribed
    DISCONNECTED = "disconnected"  # made by the client: a connection ended, detail["reason"]


@dataclass(frozen=True, slots=True)
class Control:
    """A non-trade frame the client acts on: ack, error, heartbeat, status, pong, shutdown...

    ``kind`` is one of :class:`ControlKind`; ``detail`` holds the frame's relevant values.
    """

    kind: str
    symbol: str | None = None
    detail: Mapping[str, FieldValue] = field(default_factory=dict)


class ParsedFrame(NamedTuple):
    """Everything one received frame held."""

    trades: tuple[RawTrade, ...] = ()
    controls: tuple[Control, ...] = ()
    malformed: Malformed | None = None
    unknown_kind: str | None = None  # a well-formed message of a kind K2 does not know
    # Book messages as the exchange's book reader read them (a book feed's frames), applied
    # by the feed client to its books in order.
    books: tuple[Any, ...] = ()


def trades_only(trades: tuple[RawTrade, ...]) -> ParsedFrame:
    """A frame that held trades and nothing else (what the exchanges' fast paths return), built
    without the named tuple's Python-level constructor."""
    return tuple.__new__(ParsedFrame, (trades, (), None, None, ()))


FeedEvent = Union[RawTrade, Malformed, Gap, Control, "BookUpdate", "BookGap"]


class FeedClient(Protocol):
    """An exchange's feed: yields every trade, malformed frame, gap and notable control event."""

    exchange: str
    stats: FeedStats

    def events(self) -> AsyncIterator[FeedEvent]:
        """Connect, subscribe, and yield events until :meth:`close`; reconnects on its own."""
        ...

    async def close(self) -> None:
        """Stop reading and close the connection."""
        ...


@dataclass(frozen=True, slots=True)
class SequenceVerdict:
    """What one trade id means against the ids seen before it for its symbol."""

    duplicate: bool = False  # id <= last seen: a replay (reconnect snapshot, overlap) to drop
    gap: Gap | None = None  # ids skipped between the last seen id and this one


_IN_ORDER = SequenceVerdict()
_DUPLICATE = SequenceVerdict(duplicate=True)


class SequenceTracker:
    """Per-symbol bookkeeping of exchange trade ids that are per-symbol sequences.

    Used for Binance ``t`` (``@trade``) and ``a`` (``@aggTrade``) and Kraken v2 ``trade_id``.
    Pure (no I/O, no clock). The tracker outlives connections: after :meth:`mark_reconnect`, the
    first new id of each symbol is compared with the last id of the previous connection and a
    jump is reported with ``detected_by="reconnect"``; ids at or below the last one (a snapshot
    or an overlapping connection re-sending trades) are duplicates.
    """

    def __init__(self, exchange: str) -> None:
        self._exchange = exchange
        self._last: dict[str, int] = {}
        self._across_reconnect: set[str] = set()

    def seed(self, symbol: str, last_id: int) -> None:
        """Start from an id delivered earlier (e.g. the last one in Kafka after a restart)."""
        self._last[symbol] = last_id
        self._across_reconnect.add(symbol)

    def last_seen(self, symbol: str) -> int | None:
        """The highest id seen for ``symbol``, or None."""
        return self._last.get(symbol)

    def mark_reconnect(self) -> None:
        """A new connection starts: the next jump per symbol is a reconnect gap."""
        self._across_reconnect = set(self._last)

    def observe(self, symbol: str, trade_id: int) -> SequenceVerdict:
        """Record ``trade_id`` for ``symbol``; say whether it is a duplicate or follows a gap."""
        last = self._last.get(symbol)
        if last is not None and trade_id <= last:
            return _DUPLICATE
        self._last[symbol] = trade_id
        if symbol in self._across_reconnect:
            self._across_reconnect.discard(symbol)
            detected_by = "reconnect"
        else:
            detected_by = "sequence"
        if last is None or trade_id == last + 1:
            return _IN_ORDER
        gap = Gap(self._exchange, symbol, last + 1, trade_id - 1, detected_by)
        return SequenceVerdict(gap=gap)

    def advance(self, symbol: str, newest_id: int) -> Gap | None:
        """The exchange's newest id for ``symbol``, read from its history: when it is ahead of the
        last id seen, the ids in between are a gap and the sequence moves to it (their live
        copies, should they still come, are then duplicates)."""
        last = self._last.get(symbol)
        if last is None or newest_id <= last:
            return None
        self._last[symbol] = newest_id
        self._across_reconnect.discard(symbol)
        return Gap(self._exchange, symbol, last + 1, newest_id, "history_check")


@dataclass(frozen=True, slots=True)
class Silence:
    """A key (symbol or stream) that has been quiet longer than the threshold."""

    key: str
    silent_s: float
    ever_seen: bool  # False: nothing at all since it was subscribed


class SilenceMonitor:
    """Per-key inactivity watch with an injected clock (pure; the caller logs and counts).

    A key that has had activity is due after ``threshold_s`` without any; a key that never had
    any since :meth:`watch` is due after ``first_threshold_s`` (default: the same). Each silence
    episode is reported once by :meth:`due`; activity (:meth:`seen`) re-arms it.
    """

    def __init__(
        self,
        threshold_s: float,
        first_threshold_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold_s = threshold_s
        self._first_threshold_s = threshold_s if first_threshold_s is None else first_threshold_s
        self._clock = clock
        self._since: dict[str, float] = {}
        self._seen: set[str] = set()
        self._reported: set[str] = set()

    def watch(self, keys: Iterable[str]) -> None:
        """Start watching ``keys`` from now (keys already watched keep their state)."""
        now = self._clock()
        for key in keys:
            self._since.setdefault(key, now)

    def seen(self, key: str) -> None:
        """Activity on ``key``."""
        if key in self._since:
            self._since[key] = self._clock()
            self._seen.add(key)
            self._reported.discard(key)

    def last_seen(self, key: str) -> float | None:
        """The clock's time of the last activity on ``key``; None before the first."""
        return self._since.get(key) if key in self._seen else None

    def due(self) -> list[Silence]:
        """Keys newly silent for longer than the threshold (each episode once)."""
        now = self._clock()
        found = []
        for key, since in self._since.items():
            quiet = now - since
            ever_seen = key in self._seen
            threshold = self._threshold_s if ever_seen else self._first_threshold_s
            if quiet >= threshold and key not in self._reported:
                self._reported.add(key)
                found.append(Silence(key, quiet, ever_seen))
        return found


@dataclass(slots=True)
class FeedStats:
    """Counters a feed client keeps; the ingest exports them as metrics."""

    frames: int = 0
    trades: int = 0
    malformed: int = 0
    duplicates_dropped: int = 0
    gaps: int = 0
    reconnects: int = 0
    silences: int = 0
    unknown_kinds: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The counters by name, for the ingest's summary and metrics."""
        return {
            "frames": self.frames,
            "replayed_dropped": self.duplicates_dropped,
            "malformed": self.malformed,
            "reconnects": self.reconnects,
        }
