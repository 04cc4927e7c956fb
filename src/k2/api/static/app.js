// K2's page: pipeline health, candles and volume that follow the live stream, the order book's
// depth and spread, the latest trades. Charts are TradingView's lightweight-charts (vendored under
// /static/lightweight-charts). Prices stay the API's exact decimal strings everywhere they are
// written out; numbers are used only to place things on the charts.
"use strict";

const state = { series: [], pick: null, interval: "1m", bars: [], socket: null, live: 0, key: null };
const TAPE_ROWS = 40;
const CHART_BARS = 120;
const $ = (id) => document.getElementById(id);

state.key = new URLSearchParams(location.search).get("key") || localStorage.getItem("k2-api-key");

async function get(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const headers = state.key ? { "X-API-Key": state.key } : {};
  const response = await fetch(url, { headers });
  if (response.status === 401) {
    $("key-box").hidden = false;
    throw new Error("API key required");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function seconds(iso) { return Date.parse(iso) / 1000; }

function age(iso) {
  const s = Date.now() / 1000 - seconds(iso);
  if (s < 120) return [`${s.toFixed(1)} s`, s < 60 ? "ok" : "stale"];
  if (s < 7200) return [`${(s / 60).toFixed(0)} min`, s < 900 ? "stale" : "bad"];
  if (s < 172800) return [`${(s / 3600).toFixed(1)} h`, "bad"];
  return [`${(s / 86400).toFixed(0)} d`, "bad"];
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function refreshHealth() {
  try {
    const health = await (await fetch("/healthz")).json();
    const commit = health.newest_commit_age_s;
    $("health").textContent = `${health.status}` + (commit == null ? "" : ` · last commit ${commit.toFixed(1)} s ago`);
    $("health").className = "pill " + (health.status === "ok" ? "ok" : "bad");
  } catch (error) {
    $("health").textContent = "API unreachable";
    $("health").className = "pill bad";
  }
}

async function refreshPipeline() {
  const [symbols, coverage] = await Promise.all([get("/v1/symbols"), get("/v1/coverage")]);
  const gaps = new Map();
  for (const row of coverage.data) {
    const key = `${row.exchange}|${row.symbol}`;
    gaps.set(key, (gaps.get(key) || 0) + row.unfilled_gaps.length);
  }
  state.series = symbols.data;
  const body = $("series");
  if (symbols.data.length) body.replaceChildren();
  for (const s of symbols.data) {
    const [fresh, cls] = age(s.last_trade);
    const tr = document.createElement("tr");
    tr.dataset.series = `${s.exchange}|${s.symbol}`;
    const unfilled = gaps.get(tr.dataset.series) || 0;
    tr.append(cell(s.exchange), cell(s.symbol), cell(s.last_trade.replace("T", " ").slice(0, 23)),
      cell(fresh, cls), cell(s.trades_per_s.toFixed(1), "num"), cell(String(s.trade_count), "num"),
      cell(String(unfilled), unfilled ? "num bad" : "num ok"));
    body.append(tr);
  }
  fillPicker();
}

function fillPicker() {
  const pick = $("pick");
  const values = state.series.map((s) => `${s.exchange}|${s.symbol}`);
  if ([...pick.options].map((o) => o.value).join() !== values.join()) {
    pick.replaceChildren(...values.map((v) => new Option(v.replace("|", " "), v)));
    if (state.pick && values.includes(state.pick)) pick.value = state.pick;
  }
  if (!state.pick && values.length) choose(values[0]);
}

function current() {
  const [exchange, symbol] = (state.pick || "|").split("|");
  return { exchange, symbol };
}

function choose(value) {
  state.pick = value;
  $("pick").value = value;
  state.bars = [];
  loadChart();
  loadBook();
  loadTape();
  connectLive();
}

const COLORS = { up: "#26a269", down: "#e01b24", text: "#8a96a3", grid: "#1c232b", bg: "#11161c",
  bid: "#26a269", ask: "#e01b24", line: "#e5a50a" };
const LAYOUT = { layout: { background: { color: COLORS.bg }, textColor: COLORS.text, fontSize: 11 },
  grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } }, autoSize: true };
const charts = {};

// The decimals of exact decimal strings: how finely the price axis is labelled.
function decimals(values) {
  let most = 0;
  for (const value of values) {
    const point = String(value).indexOf(".");
    if (point >= 0) most = Math.max(most, String(value).replace(/0+$/, "").length - point - 1);
  }
  return Math.min(most, 12);
}

function makeCharts() {
  const LWC = window.LightweightCharts;
  charts.main = LWC.createChart($("chart"), { ...LAYOUT,
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: COLORS.grid },
    rightPriceScale: { borderColor: COLORS.grid } });
  charts.candles = charts.main.addSeries(LWC.CandlestickSeries, { upColor: COLORS.up,
    downColor: COLORS.down, wickUpColor: COLORS.up, wickDownColor: COLORS.down, borderVisible: false });
  charts.volume = charts.main.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" },
    priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false });
  charts.main.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  charts.candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
  charts.main.subscribeCrosshairMove((param) => {
    const bar = param.time === undefined ? null : state.bars.find((b) => seconds(b.bar_start) === param.time);
    note(bar);
  });
  charts.depth = LWC.createOptionsChart($("depth"), { ...LAYOUT,
    rightPriceScale: { borderColor: COLORS.grid }, timeScale: { borderColor: COLORS.grid } });
  charts.bids = charts.depth.addSeries(LWC.AreaSeries, { lineColor: COLORS.bid,
    topColor: "rgba(38,162,105,.4)", bottomColor: "rgba(38,162,105,.05)", lineType: 1,
    lastValueVisible: false, priceLineVisible: false });
  charts.asks = charts.depth.addSeries(LWC.AreaSeries, { lineColor: COLORS.ask,
    topColor: "rgba(224,27,36,.4)", bottomColor: "rgba(224,27,36,.05)", lineType: 1,
    lastValueVisible: false, priceLineVisible: false });
  charts.spreadChart = LWC.createChart($("spread"), { ...LAYOUT,
    timeScale: { timeVisible: true, secondsVisible: true, borderColor: COLORS.grid },
    rightPriceScale: { borderColor: COLORS.grid } });
  charts.spread = charts.spreadChart.addSeries(LWC.LineSeries, { color: COLORS.line, lineWidth: 1,
    lineType: 1 });
}

// The bars' exact strings under the chart: the hovered bar's, else the range shown.
function note(bar) {
  const bars = state.bars;
  if (bar) {
    $("chart-note").textContent = `${bar.bar_start.slice(0, 16)} UTC  O ${bar.open}  H ${bar.high}  L ${bar.low}  C ${bar.close}  V ${bar.volume}`;
  } else {
    $("chart-note").textContent = bars.length
      ? `${bars.length} ${state.interval} bars, ${bars[0].bar_start.slice(0, 16)} to ${bars[bars.length - 1].bar_end.slice(0, 16)} UTC`
      : "no bars in this range";
  }
}

function candle(bar) {
  return { time: seconds(bar.bar_start), open: Number(bar.open), high: Number(bar.high),
    low: Number(bar.low), close: Number(bar.close) };
}

function volumeBar(bar) {
  return { time: seconds(bar.bar_start), value: Number(bar.volume),
    color: Number(bar.close) >= Number(bar.open) ? "rgba(38,162,105,.5)" : "rgba(224,27,36,.5)" };
}

async function loadChart() {
  const { exchange, symbol } = current();
  const stat = state.series.find((s) => s.exchange === exchange && s.symbol === symbol);
  if (!stat) return;
  const step = state.intervals[state.interval];
  const end = (Math.floor(seconds(stat.last_trade) / step) + 1) * step;
  const params = { exchange, symbol, start: new Date((end - CHART_BARS * step) * 1000).toISOString(),
    end: new Date(end * 1000).toISOString() };
  const body = await get(`/v1/ohlcv/${state.interval}`, params);
  if (state.pick !== `${exchange}|${symbol}`) return;
  const live = state.bars.filter((b) => b.live && seconds(b.bar_start) >= end);
  state.bars = [...body.data, ...live];
  $("chart").dataset.start = params.start;
  $("chart").dataset.end = params.end;
  draw();
}

function draw() {
  const bars = state.bars.slice(-CHART_BARS);
  const precision = decimals(bars.flatMap((b) => [b.open, b.high, b.low, b.close]));
  charts.candles.applyOptions({ priceFormat: { type: "price", precision, minMove: 10 ** -precision } });
  charts.candles.setData(bars.map(candle));
  charts.volume.setData(bars.map(volumeBar));
  note(null);
}

// The book's levels, best first, as cumulative size by price (ascending, as the chart needs).
function depthPoints(levels, reverse) {
  let total = 0;
  const points = levels.map(([price, size]) => {
    total += Number(size);
    return { time: Number(price), value: total };
  });
  return reverse ? points.reverse() : points;
}

async function loadBook() {
  const { exchange, symbol } = current();
  if (!state.books) {
    $("book-note").textContent = "no order books stored (K2_INGEST__<EXCHANGE>__BOOKS=true captures them)";
    return;
  }
  let book, bbo;
  try {
    [book, bbo] = await Promise.all([get("/v1/book", { exchange, symbol, depth: 50 }),
      get("/v1/bbo", { exchange, symbol, limit: 5000 })]);
  } catch (error) {
    if (state.pick !== `${exchange}|${symbol}`) return;
    state.book = null;
    $("book-note").textContent = `no order book of ${symbol} on ${exchange} (K2_INGEST__${exchange.toUpperCase()}__BOOKS=true captures it)`;
    charts.bids.setData([]); charts.asks.setData([]); charts.spread.setData([]);
    return;
  }
  if (state.pick !== `${exchange}|${symbol}`) return;
  state.book = book;
  state.bbo = bbo.data;
  const [bid, ask] = [book.bids[0], book.asks[0]];
  $("book-note").textContent = `${book.last_at.replace("T", " ").slice(0, 23)} UTC  bid ${bid ? bid[0] + " × " + bid[1] : "-"}  ask ${ask ? ask[0] + " × " + ask[1] : "-"}  ${book.verified ? "verified" : "NOT verified"}`;
  $("book-note").className = book.verified ? "" : "bad";
  charts.bids.setData(depthPoints(book.bids, true));
  charts.asks.setData(depthPoints(book.asks, false));
  charts.depth.timeScale().fitContent();
  const spreads = [];
  for (const row of bbo.data) {
    if (row.spread === null) continue;
    const time = seconds(row.time);
    if (spreads.length && spreads[spreads.length - 1].time === time) spreads.pop();
    spreads.push({ time, value: Number(row.spread) });
  }
  charts.spread.setData(spreads);
}

// What the page shows, for checks: the bars and book as received, and what the charts hold.
window.k2Page = {
  bars: () => state.bars.slice(-CHART_BARS),
  plotted: () => charts.candles.data(),
  book: () => state.book,
  depth: () => ({ bids: charts.bids.data(), asks: charts.asks.data() }),
  spread: () => charts.spread.data(),
};

function tapeRow(trade) {
  const tr = document.createElement("tr");
  tr.dataset.messageId = trade.message_id;
  tr.append(cell(trade.exchange_ts.replace("T", " ").slice(0, 26)), cell(trade.side, trade.side),
    cell(trade.price, "num"), cell(trade.quantity, "num"), cell(trade.trade_id || "-"));
  return tr;
}

async function loadTape() {
  const { exchange, symbol } = current();
  const body = await get("/v1/trades/latest", { exchange, symbol, n: TAPE_ROWS });
  if (state.pick !== `${exchange}|${symbol}`) return;
  $("trades").replaceChildren(...body.data.map(tapeRow));
}

function onLiveTrade(trade) {
  const tape = $("trades");
  tape.prepend(tapeRow(trade));
  while (tape.rows.length > TAPE_ROWS) tape.deleteRow(-1);
  state.live += 1;
  $("live-state").textContent = `live: ${state.live} trades`;
  const step = state.intervals[state.interval];
  const start = Math.floor(seconds(trade.exchange_ts) / step) * step;
  const last = state.bars[state.bars.length - 1];
  if (last && seconds(last.bar_start) === start) {
    last.close = trade.price;
    if (Number(trade.price) > Number(last.high)) last.high = trade.price;
    if (Number(trade.price) < Number(last.low)) last.low = trade.price;
  } else if (!last || start > seconds(last.bar_start)) {
    state.bars.push({ bar_start: new Date(start * 1000).toISOString().replace(".000Z", ".000000Z"),
      bar_end: new Date((start + step) * 1000).toISOString().replace(".000Z", ".000000Z"),
      open: trade.price, high: trade.price, low: trade.price, close: trade.price,
      volume: trade.quantity, live: true });
  } else {
    return;
  }
  const bar = state.bars[state.bars.length - 1];
  charts.candles.update(candle(bar));
}

function connectLive() {
  if (state.socket) state.socket.close();
  const { exchange, symbol } = current();
  const url = new URL("/v1/stream/trades", location.origin);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("exchange", exchange);
  url.searchParams.set("symbol", symbol);
  if (state.key) url.searchParams.set("api_key", state.key);
  const socket = new WebSocket(url);
  state.socket = socket;
  state.live = 0;
  socket.onopen = () => { $("live-state").textContent = "live: connected"; };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    $("live-state").textContent = `live: closed${event.reason ? " (" + event.reason + ")" : ""}`;
    setTimeout(() => { if (state.socket === socket) connectLive(); }, 5000);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "trades") message.trades.forEach(onLiveTrade);
  };
}

async function start() {
  makeCharts();
  $("key-save").onclick = () => {
    state.key = $("key").value;
    localStorage.setItem("k2-api-key", state.key);
    $("key-box").hidden = true;
    tick();
  };
  const exchanges = await get("/v1/exchanges").catch(() => ({ intervals: {} }));
  state.intervals = exchanges.intervals || {};
  state.books = Boolean(exchanges.books);
  $("interval").replaceChildren(...Object.keys(state.intervals).map((i) => new Option(i, i)));
  $("interval").onchange = (event) => { state.interval = event.target.value; state.bars = []; loadChart(); };
  $("pick").onchange = (event) => choose(event.target.value);
  await tick();
  setInterval(tick, 5000);
  setInterval(() => { if (state.pick) loadChart().catch(() => {}); }, 10000);
  setInterval(() => { if (state.pick) loadBook().catch(() => {}); }, 5000);
}

async function tick() {
  await refreshHealth();
  await refreshPipeline().catch((error) => { $("chart-note").textContent = error.message; });
}

start();
