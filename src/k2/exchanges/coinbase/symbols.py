"""Coinbase products: the public products list, the names a user may give, and ``-USDC`` twins.

The reference data is the Advanced Trade API's public ``GET /api/v3/brokerage/market/products``
(no key), read by :func:`fetch_json`. A user may name a product natively (``BTC-USD``, any case)
or canonically (``BTC/USD``); a name that matches no listed product is refused before any
connection is made.

``-USDC`` products: "Subscribing to "-USDC" based products are only available on the user
channel. Other channels will return the same data as the corresponding "-USD" based products"
(docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels). The
products list says which product a ``-USDC`` one stands for (its ``alias``, ``BTC-USD`` for
``BTC-USDC``), so such a product is read under that name: its trades arrive as the ``-USD``
product's, and two names of one book are subscribed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.errors import ExchangeError, UnknownSymbolError


@dataclass(frozen=True, slots=True)
class CoinbaseProduct:
    """One listed product."""

    product_id: str  # e.g. BTC-USD
    base: str  # base_currency_id as listed, e.g. BTC
    quote: str
    status: str  # online, offline, delisted, ...
    trading_disabled: bool = False
    is_disabled: bool = False
    product_type: str = "SPOT"
    alias: str = ""  # the product whose market data this one shares ("" for none)

    @property
    def canonical(self) -> str:
        return f"{canonical_asset(self.base)}/{canonical_asset(self.quote)}"

    @property
    def native(self) -> str:
        """The name its trades carry on the market channels."""
        return self.alias or self.product_id

    @property
    def trading(self) -> bool:
        return (
            self.status == "online"
            and not self.trading_disabled
            and not self.is_disabled
            and self.product_type == "SPOT"
        )


def _text(entry: Mapping[str, object], name: str) -> str:
    value = entry.get(name)
    return value if isinstance(value, str) else ""


def parse_products(payload: object) -> dict[str, CoinbaseProduct]:
    """Products of a products-list response keyed by product id; raises
    :class:`~k2.errors.ExchangeError` on a bad shape or an error answer."""
    if not isinstance(payload, dict):
        raise ExchangeError("coinbase products response is not a JSON object")
    entries = payload.get("products")
    if not isinstance(entries, list):
        message = payload.get("message") or payload.get("error") or "no products list"
        raise ExchangeError(f"coinbase products list returned an error: {message}")
    listed: dict[str, CoinbaseProduct] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not _text(entry, "product_id"):
            continue
        product_id = _text(entry, "product_id").upper()
        listed[product_id] = CoinbaseProduct(
            product_id=product_id,
            base=_text(entry, "base_currency_id"),
            quote=_text(entry, "quote_currency_id"),
            status=_text(entry, "status"),
            trading_disabled=entry.get("trading_disabled") is True,
            is_disabled=entry.get("is_disabled") is True,
            product_type=_text(entry, "product_type") or "SPOT",
            alias=_text(entry, "alias").upper(),
        )
    return listed


def resolve_products(
    requested: Iterable[str], listed: Mapping[str, CoinbaseProduct], strict: bool = True
) -> list[CoinbaseProduct]:
    """The listed products for the requested names, in order; the first unknown name raises
    :class:`~k2.errors.UnknownSymbolError` naming it (without ``strict``, it is left out)."""
    index: dict[str, CoinbaseProduct] = {}
    for product in listed.values():
        index.setdefault(product.product_id, product)
        index.setdefault(f"{product.base}/{product.quote}".upper(), product)
        index.setdefault(product.canonical.upper(), product)
    resolved: list[CoinbaseProduct] = []
    for name in requested:
        found = index.get(name.strip().upper())
        if found is None and strict:
            raise UnknownSymbolError(
                f"coinbase does not list the product {name!r} (not in its products list)"
            )
        if found is not None:
            resolved.append(found)
    return resolved
