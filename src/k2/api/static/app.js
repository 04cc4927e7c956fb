// K2's page: pipeline health, a candlestick chart that follows the live stream, the latest trades.
// Prices stay the API's exact decimal strings everywhere they are shown; numbers are used only
// to place candles on the screen.
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
  loadTape();
  connectLive();
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
  const svg = $("chart");
  svg.dataset.start = params.start;
  svg.dataset.end = params.end;
  draw();
}

function draw() {
  const svg = $("chart");
  const bars = state.bars.slice(-CHART_BARS);
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  $("chart-note").textContent = bars.length
    ? `${bars.length} ${state.interval} bars, ${bars[0].bar_start.slice(0, 16)} to ${bars[bars.length - 1].bar_end.slice(0, 16)} UTC`
    : "no bars in this range";
  if (!bars.length) return;
  const lows = bars.map((b) => Number(b.low)), highs = bars.map((b) => Number(b.high));
  const lo = Math.min(...lows), hi = Math.max(...highs), span = hi - lo || 1;
  const width = 900, height = 320, pad = 20, slot = (width - 60) / CHART_BARS;
  const y = (price) => pad + (hi - Number(price)) / span * (height - 2 * pad);
  bars.forEach((bar, i) => {
    const x = i * slot + slot / 2;
    const g = document.createElementNS(ns, "g");
    g.setAttribute("class", "candle " + (Number(bar.close) >= Number(bar.open) ? "up" : "down"));
    for (const name of ["bar_start", "open", "high", "low", "close"]) g.dataset[name] = bar[name];
    const wick = document.createElementNS(ns, "line");
    wick.setAttribute("x1", x); wick.setAttribute("x2", x);
    wick.setAttribute("y1", y(bar.high)); wick.setAttribute("y2", y(bar.low));
    const body = document.createElementNS(ns, "rect");
    const top = Math.min(y(bar.open), y(bar.close));
    body.setAttribute("x", x - slot * 0.35); body.setAttribute("width", slot * 0.7);
    body.setAttribute("y", top); body.setAttribute("height", Math.max(1, Math.abs(y(bar.open) - y(bar.close))));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${bar.bar_start} O ${bar.open} H ${bar.high} L ${bar.low} C ${bar.close} V ${bar.volume}`;
    g.append(wick, body, title);
    svg.append(g);
  });
  for (const price of [hi, lo]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", width - 55); label.setAttribute("y", y(price) + 4);
    label.textContent = price === hi ? bars[highs.indexOf(hi)].high : bars[lows.indexOf(lo)].low;
    svg.append(label);
  }
}

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
  }
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
    draw();
  };
}

async function start() {
  $("key-save").onclick = () => {
    state.key = $("key").value;
    localStorage.setItem("k2-api-key", state.key);
    $("key-box").hidden = true;
    tick();
  };
  const exchanges = await get("/v1/exchanges").catch(() => ({ intervals: {} }));
  state.intervals = exchanges.intervals || {};
  $("interval").replaceChildren(...Object.keys(state.intervals).map((i) => new Option(i, i)));
  $("interval").onchange = (event) => { state.interval = event.target.value; state.bars = []; loadChart(); };
  $("pick").onchange = (event) => choose(event.target.value);
  await tick();
  setInterval(tick, 5000);
  setInterval(() => { if (state.pick) loadChart().catch(() => {}); }, 10000);
}

async function tick() {
  await refreshHealth();
  await refreshPipeline().catch((error) => { $("chart-note").textContent = error.message; });
}

start();
