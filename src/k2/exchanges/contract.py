"""What every exchange package offers the ingest, in one place: settings, the adapter, feed specs.

The ingest service names no exchange. Each exchange package has an ``adapter.py`` whose adapter
class implements :class:`ExchangeAdapter` (feed client, Avro record, trade ids, REST backfill) and
a ``config.py`` whose settings class derives from :class:`ExchangeSettings`; the registry in
:mod:`k2.exchanges` finds both by exchange name. An exchange package imports nothing of the
ingest, Kafka or Spark: what it needs from the ingest's settings arrives as
:class:`BackfillOptions`.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from k2.errors import ConfigError
from k2.exchanges.base import FeedClient, RawTrade, Silence
from k2.transport.http import RestPacer

ALL_SYMBOLS = "*"  # the symbols setting that means: every symbol the exchange lists as trading


class ExchangeSettings(BaseModel):
    """Settings every exchange has (``K2_INGEST__<EXCHANGE>__*``); an exchange's ``config.py``
    adds its own. Frozen, and a misspelt name is an error, as for every K2 settings section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] = Field(
        ("BTC/USD", "ETH/USD"),
        description='Symbols as the exchange names them, or ["*"] for every symbol it lists as '
        "trading (re-read every reference_refresh_s: new listings subscribed, delistings "
        "dropped).",
    )
    max_symbols_per_connection: int | None = Field(
        None,
        ge=1,
        description="Most symbols one WebSocket connection carries; default: the exchange's limit.",
    )
    reference_refresh_s: float = Field(
        300.0, gt=0, description="Seconds between re-reads of the exchange's reference data."
    )
    books: bool = Field(
        False,
        description="Also capture the exchange's L2 order book of the same symbols, verified "
        "against its checksum or sequence, on market.crypto.books.<exchange>.raw.",
    )
    book_depth: int | None = Field(
        None,
        ge=1,
        description="Levels a side of the captured book; default: the exchange's default "
        "(see the order book protocols page for the depths each exchange offers).",
    )

    # The depths the exchange's book channel offers (any depth from 1 when empty), and its
    # default; an exchange whose book is captured sets them.
    book_depths: ClassVar[tuple[int, ...]] = ()
    default_book_depth: ClassVar[int | None] = None

    @field_validator("symbols")
    @classmethod
    def _some_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(symbol.strip() for symbol in value if symbol.strip())
        if not cleaned:
            raise ValueError('name at least one symbol, or ["*"] for every symbol')
        return cleaned

    @model_validator(mode="after")
    def _offered_depth(self) -> ExchangeSettings:
        depth, offered = self.book_depth, type(self).book_depths
        if depth is not None and offered and depth not in offered:
            listed = ", ".join(str(value) for value in offered)
            raise ValueError(f"book_depth {depth} is not offered; choose one of {listed}")
        return self

    @property
    def every_symbol(self) -> bool:
        return ALL_SYMBOLS in self.symbols

    @property
    def effective_book_depth(self) -> int | None:
        """The depth the book is captured at: the configured one, or the exchange's default."""
        return self.book_depth or type(self).default_book_depth

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        """The changes to this section that select the WebSocket ``protocol`` (one of the
        exchange's protocols in the registry)."""
        raise ConfigError(f"{type(self).__name__} has no protocol {protocol!r}")


@dataclass(frozen=True, slots=True)
class Shard:
    """A stable share of an exchange's symbols: symbol ``s`` belongs to shard ``crc32(s) % count``.

    The share depends on the symbol's name alone, so it is the same in every process and after
    every restart, and no two shards of one exchange ever own the same symbol.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count} is not I/N with 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"1/4"`` → shard 1 of 4."""
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ConfigError(f"shard {text!r} is not I/N (for example 0/2)")
        return cls(int(index), int(count))

    def owns(self, symbol: str) -> bool:
        return self.count == 1 or zlib.crc32(symbol.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE_EXCHANGE = Shard()  # one process owns every symbol


@dataclass(frozen=True)
class FeedSpec:
    """Where the feed reads from, which symbols it owns, and what was delivered before this run.

    ``symbols`` are native names once resolved against the reference data (see
    :meth:`ExchangeAdapter.resolve_symbols`); before that, the configured names (or ``*``).
    """

    symbols: tuple[str, ...]
    ws_url: str | None = None  # None: the exchange's public URL
    rest_url: str | None = None  # None: the exchange's public URL
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)
    shard: Shard = WHOLE_EXCHANGE

    @property
    def every_symbol(self) -> bool:
        return ALL_SYMBOLS in self.symbols


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    """What the ingest allows the exchange's REST backfill (shared by every gap of the process)."""

    max_trades: int = 100_000  # most trades recovered for one gap
    request_interval_s: float | None = None  # None: the exchange's public limit


DEFAULT_BACKFILL = BackfillOptions()


@dataclass(frozen=True, slots=True)
class Interval:
    """What a break in one symbol's feed (a reconnect, a restart) may have lost, where its
    trade ids cannot tell: the trades matched between the last one delivered before the break
    and the first one after it (each with its id where it has one)."""

    symbol: str
    from_us: int
    after_id: int | None
    to_us: int
    before_id: int | None


@dataclass(frozen=True, slots=True)
class IntervalFill:
    """What an exchange's history still held of an :class:`Interval`: ``complete`` when it
    reached back over the whole interval, else ``reason`` says what could not be read."""

    trades: list[RawTrade]
    complete: bool
    reason: str | None


class ExchangeAdapter(Protocol):
    """The exchange-specific steps of the ingest."""

    exchange: str
    schema_name: str
    settings: ExchangeSettings

    def book_client(self, spec: FeedSpec) -> Any:
        """The exchange's book feed (:mod:`k2.exchanges.bookfeed`) for ``spec``'s symbols;
        raises ConfigError where K2 does not capture the exchange's book."""
        ...

    def client(
        self, spec: FeedSpec, on_silence: Callable[[Silence], None] | None = None
    ) -> FeedClient:
        """The feed client for the resolved symbols of ``spec``."""
        ...

    async def resolve_symbols(self, spec: FeedSpec) -> list[str]:
        """The native symbols ``spec`` names (every trading one for ``*``) that its shard owns,
        read from the exchange's reference data; raises UnknownSymbolError for a name it lacks."""
        ...

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        """(WebSocket URL, REST URL) of the exchange on a local simulator at ``base_url``."""
        ...

    def message_id(self, raw: RawTrade) -> str: ...

    record_fields: tuple[str, ...]  # the raw schema's fields, in the order of record_values

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        """The raw Avro record of a trade: its fields' values in :attr:`record_fields` order
        (the ingest's hot path: no dict per trade)."""
        ...

    def to_record(self, raw: RawTrade, message_id: str, k2_version: str) -> dict[str, Any]:
        """The same record as a mapping of field names (tests, tools)."""
        ...

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        """The trade id of a record read back from the raw topic, for this run's id sequence
        (None when the record has no id, or one of another sequence)."""
        ...

    def exchange_us(self, raw: RawTrade) -> int | None:
        """When the exchange matched the trade (µs since the epoch), if readable."""
        ...

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        """The same, from an Avro record read back from the raw topic."""
        ...

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The id of ``symbol``'s newest trade in the exchange's REST history, if it has ids."""
        ...

    # False where a jump in a symbol's trade ids reveals nothing (no ids, or ids shared by every
    # symbol): a break in the feed is then an :class:`Interval` for :meth:`backfill_interval`.
    ids_per_symbol: bool

    async def backfill_interval(self, spec: FeedSpec, interval: Interval) -> IntervalFill:
        """The trades of ``interval`` the exchange's history still holds, in order; never raises
        (a history that cannot be read is an unfilled interval with its reason)."""
        ...

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        """Trades ``first_id``..``last_id`` of ``symbol`` from the exchange's REST history, at most
        ``max_trades``; ``after_us`` is the match time of the trade before the gap. Raises
        :class:`~k2.errors.BackfillError` when the history cannot be read."""
        ...


class AdapterBase:
    """What every exchange's adapter shares: its settings, its shard's share of the exchange's REST
    budget, and the feed client built from a :class:`FeedSpec`."""

    public_interval_s: ClassVar[float] = 1.0  # the exchange's public REST pace, one process
    client_type: ClassVar[Callable[..., Any]]
    ids_per_symbol: ClassVar[bool] = True
    interval_reason: ClassVar[str] = (
        "the exchange sends no trade ids here: trades in this interval may be missing"
    )

    def __init__(
        self,
        settings: ExchangeSettings,
        backfill: BackfillOptions = DEFAULT_BACKFILL,
        shard: Shard = WHOLE_EXCHANGE,
    ) -> None:
        self.settings = settings
        self.backfill_options = backfill
        self.shard = shard
        # The exchange's REST budget is shared by every shard: each takes its share of it.
        interval = backfill.request_interval_s
        base = self.public_interval_s if interval is None else interval
        self._pacer = RestPacer(base * shard.count)

    options_type: ClassVar[Callable[..., Any]]  # the exchange's frozen feed options dataclass
    book_client_type: ClassVar[Callable[..., Any] | None] = None  # its book feed, if any

    def exchange_options(self) -> dict[str, Any]:
        """The exchange's own feed options from its settings (protocol, stream, time unit...)."""
        return {}

    def options(self, spec: FeedSpec) -> Any:
        """The feed client's options: the exchange's own, where ``spec`` points (the public URLs
        unless it names others), and what every exchange has (symbols, resume ids, shard...)."""
        urls = {"ws_url": spec.ws_url, "rest_url": spec.rest_url}
        return type(self).options_type(
            **self.exchange_options(),
            **{name: url for name, url in urls.items() if url},
            symbols=spec.symbols,
            last_trade_ids=dict(spec.last_trade_ids),
            reference_refresh_s=self.settings.reference_refresh_s,
            max_symbols_per_connection=self.settings.max_symbols_per_connection,
            shard=spec.shard,
            **self.book_options(),
        )

    def book_options(self) -> dict[str, Any]:
        """The book depth, for an exchange whose book K2 captures."""
        if type(self).book_client_type is None:
            return {}
        return {"book_depth": self.settings.effective_book_depth}

    def book_client(self, spec: FeedSpec) -> Any:
        """The exchange's book feed for the resolved symbols of ``spec``."""
        book_type = type(self).book_client_type
        if book_type is None:
            exchange = getattr(self, "exchange", type(self).__name__)
            raise ConfigError(
                f"K2 does not capture the order book of {exchange} yet; set "
                f"K2_INGEST__{exchange.upper()}__BOOKS=false"
            )
        return book_type(self.options(spec))

    def client(self, spec: FeedSpec, on_silence: Callable[[Silence], None] | None = None) -> Any:
        return type(self).client_type(
            self.options(spec), on_silence, functools.partial(self.newest_trade_id, spec)
        )

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The id of ``symbol``'s newest trade in the exchange's history (None where the exchange's
        trades have no ids), read through the same REST budget as backfills."""
        return None

    async def backfill_interval(self, spec: FeedSpec, interval: Interval) -> IntervalFill:
        """Nothing: an exchange without a history to read for an interval reports it unfilled."""
        return IntervalFill([], False, self.interval_reason)

    record_fields: ClassVar[tuple[str, ...]]

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        raise NotImplementedError

    def to_record(self, raw: RawTrade, message_id: str, k2_version: str) -> dict[str, Any]:
        values = self.record_values(raw, message_id, k2_version)
        return dict(zip(self.record_fields, values, strict=True))

    async def resolve_symbols(self, spec: FeedSpec) -> list[str]:
        symbols: list[str] = await self.client(spec).list_symbols(spec.symbols)
        return symbols


def simulator_ws_base(base_url: str) -> str:
    """The WebSocket base of a local simulator at the HTTP ``base_url`` (one port serves both)."""
    ws = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return ws.rstrip("/")


def owned(symbols: Sequence[str], shard: Shard) -> list[str]:
    """``symbols`` of ``shard``, in order, each once."""
    return [symbol for symbol in dict.fromkeys(symbols) if shard.owns(symbol)]
