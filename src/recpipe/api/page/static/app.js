// recpipe's page: one module, no build step, no third-party code. Every view reads the
// service's JSON endpoints; recommendations come from the public /recommendations itself.
// Text from the server is only ever set as textContent (never parsed as HTML).

const main = document.getElementById("main");
const COLORS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a5c00", "#000000",
                "#8c6bb1", "#6b8e23"];
let refresh = null;  // the live view's timer

// -- small helpers ------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = {
  num: (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en", {
    maximumFractionDigits: digits, minimumFractionDigits: digits })),
  score: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3)),
  bytes: (v) => (v < 2 ** 20 ? `${fmt.num(v / 1024, 1)} KiB` : `${fmt.num(v / 2 ** 20, 1)} MiB`),
  when: (v) => (v ? new Date(typeof v === "number" ? v * 1000 : v).toLocaleString() : "–"),
};

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "–")]));
}

function table(headers, rows, { numeric = [], caption = null } = {}) {
  return el("div", { class: "scroll" }, el("table", {},
    caption ? el("caption", { class: "muted" }, caption) : null,
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
}

function prose(text) {  // `a command` in the service's text becomes a code element (still text only)
  return String(text ?? "").split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));
}

function problem(error) {
  return el("p", { class: "error", role: "alert" }, prose(error.message),
    error.hint ? el("span", { class: "muted" }, " — ", prose(error.hint)) : null);
}

// -- the API -----------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.hint = body?.hint;
  }
}

function askForKey(refused) {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-refused").hidden = !refused;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      sessionStorage.setItem("recpipe-key", document.getElementById("key-input").value);
      resolve();
    }, { once: true });
    dialog.showModal();
  });
}

async function api(path, params = null) {
  const url = params ? `${path}?${params}` : path;
  for (let attempt = 0; attempt < 3; attempt++) {
    const key = sessionStorage.getItem("recpipe-key");
    const response = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
    if (response.status === 401) { await askForKey(Boolean(key)); continue; }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }
  throw new ApiError(401, { error: "the API key was refused", hint: "reload the page to enter it again" });
}

// -- routing -----------------------------------------------------------------------------------
function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || "customers", id: parts[1], params: new URLSearchParams(query) };
}

let rendering = 0;  // views can overlap (a slow one, then a click): only the newest is drawn
const current = (mine) => mine === rendering;

async function render() {
  clearInterval(refresh);
  refresh = null;
  const mine = ++rendering;
  const { view, id, params } = route();
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const views = { customers: id ? customerView : customerSearch, products: id ? productView : productSearch,
                  shop: shopView, live: liveView, pipeline: pipelineView };
  const draw = views[view] || customerSearch;
  main.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const drawn = [await draw(id, params, mine)].flat();
    if (current(mine)) main.replaceChildren(...drawn);
  } catch (error) {
    if (current(mine)) main.replaceChildren(problem(error));
  }
  if (current(mine)) document.title = `recpipe · ${view}`;
}

function searchForm(label, name, value, onSubmit) {
  const input = el("input", { id: "q", name, type: "search", value: value || "", autocomplete: "off" });
  return el("form", { class: "search", role: "search", onsubmit: (e) => { e.preventDefault(); onSubmit(input.value); } },
    el("div", {}, el("label", { for: "q" }, label), input), el("button", { type: "submit" }, "Search"));
}

// -- customers ---------------------------------------------------------------------------------
async function customerSearch(_id, params) {
  const q = params.get("q") || "";
  const found = await api("/customers", new URLSearchParams({ q, limit: 50 }));
  return [
    el("h1", {}, "Customers"),
    searchForm("Customer number, name or city", "q", q, (text) => {
      const number = text.trim();  // a customer number opens that customer
      location.hash = /^\d{1,10}$/.test(number) ? `#/customers/${number}` : `#/customers?q=${encodeURIComponent(text)}`;
    }),
    found.length ? table(["number", "name", "city", "country", "credit limit", "stored embedding"], found.map((c) => [
      el("a", { href: `#/customers/${c.id}` }, c.id), c.name, c.city, c.country, fmt.num(c.credit_limit), c.stored_embedding ? "yes" : "no",
    ]), { numeric: [0, 4] }) : el("p", { class: "muted" }, "No customer matches. (Customers are loaded by `recpipe vectors load` from the source.)"),
  ];
}

const RULES = { k: "10", exclude_bought: "true", in_stock: "true", product_line: "", max_per_line: "" };

function recommendationParams(rules) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(rules)) if (value !== "") params.set(key, value);
  return params;
}

async function customerView(id, params) {
  const rules = Object.fromEntries(Object.entries(RULES).map(([k, v]) => [k, params.get(k) ?? v]));
  // the first list is asked for at once, beside the profile: the rules are in the address
  let first = api(`/recommendations/${encodeURIComponent(id)}`, recommendationParams(rules));
  first.catch(() => {});  // reported by show()
  const [profile, lines] = await Promise.all([
    api(`/customers/${encodeURIComponent(id)}`).catch((error) => {
      if (error.status !== 404) throw error;
      return { customer: { id, unknown: true }, bought: [] };  // the API still serves popular items for them
    }), api("/product_lines")]);
  const c = profile.customer;
  const results = el("section", { id: "recommendations", "aria-live": "polite" });
  const field = (name, label, input) => el("div", {}, el("label", { for: `rule-${name}` }, label), input);
  const check = (name, label) => el("div", { class: "check" },
    el("input", { type: "checkbox", id: `rule-${name}`, name, checked: rules[name] === "true" }), " ",
    el("label", { for: `rule-${name}` }, label));
  const form = el("form", { id: "rules", onsubmit: (e) => { e.preventDefault(); show(); } },
    el("fieldset", {}, el("legend", {}, "Rules"),
      field("k", "How many (k)", el("input", { type: "number", id: "rule-k", name: "k", min: 1, max: 100, value: rules.k, required: true })),
      field("product_line", "Product line", el("select", { id: "rule-product_line", name: "product_line" },
        el("option", { value: "" }, "any"), lines.map((l) => el("option", { value: l, selected: l === rules.product_line }, l)))),
      field("max_per_line", "At most per line", el("input", { type: "number", id: "rule-max_per_line", name: "max_per_line", min: 1, max: 100, value: rules.max_per_line, placeholder: "no limit" })),
      check("exclude_bought", "Leave out what they bought"), check("in_stock", "Only in stock"),
      el("button", { type: "submit" }, "Recommend")));
  form.addEventListener("change", () => show());

  let names = null;
  let latest = 0;  // rule changes can overlap: only the newest answer is shown
  async function show() {
    if (!form.checkValidity()) {  // e.g. k above 100: say so, ask nothing
      latest++;
      first = null;
      form.reportValidity();
      results.replaceChildren(problem({ message: "These rules are not valid", hint: "k and ‘at most per line’ are 1 to 100" }));
      return;
    }
    const mine = ++latest;
    names = null;
    const data = new FormData(form);
    const chosen = { k: data.get("k") || "10", exclude_bought: String(data.has("exclude_bought")), in_stock: String(data.has("in_stock")),
                     product_line: data.get("product_line") || "", max_per_line: data.get("max_per_line") || "" };
    const query = recommendationParams(chosen);
    history.replaceState(null, "", `#/customers/${c.id}?${query}`);
    performance.mark("recpipe:rules");  // bench/page.py measures from here (a rule change) or from navigation
    results.setAttribute("aria-busy", "true");
    try {
      const asked = first ?? api(`/recommendations/${c.id}`, query);
      first = null;
      const rec = await asked;
      if (mine !== latest) return;  // a newer change was made meanwhile
      names = Object.fromEntries(rec.items.map((item) => [item.id, el("span", { class: "muted" }, "…")]));
      results.replaceChildren(
        el("h2", {}, "Recommendations"),
        el("p", { class: "muted" }, `strategy ${rec.strategy} · model ${rec.model_version} · recommendation ${rec.recommendation_id}`),
        rec.items.length ? table(["#", "product", "name", "product line", "score"], rec.items.map((item, i) => [
          i + 1, el("a", { href: `#/products/${encodeURIComponent(item.id)}`, "data-product": item.id }, item.id), names[item.id],
          item.product_line ?? "–", fmt.score(item.score)]), { numeric: [0, 4] })
          : el("p", { class: "muted" }, "Nothing passes these rules."));
    } catch (error) {
      if (mine !== latest) return;
      results.replaceChildren(problem(error));
    }
    results.removeAttribute("aria-busy");
    performance.mark("recpipe:recommendations-shown");
    // the names follow in one more call; the list is on screen meanwhile
    const pending = names ?? {};  // this list's name cells (a newer list has its own)
    const shown = Object.keys(pending);
    if (shown.length) {
      const named = await api("/products", new URLSearchParams(shown.map((code) => ["ids", code]))).catch(() => []);
      for (const p of named) if (pending[p.id]?.isConnected) pending[p.id].replaceWith(p.name ?? "–");
      for (const code of shown) if (pending[code].isConnected) pending[code].replaceWith("–");
    }
  }

  show();
  return [
    el("p", {}, el("a", { href: "#/customers" }, "← Customers")),
    el("h1", {}, `${c.name ?? "Customer"} (${c.id})`),
    c.unknown ? el("p", { class: "muted", role: "status" }, `No customer ${c.id} among the loaded customers: `,
      "below are the items a visitor the shop does not know is shown. ", el("a", { href: "#/customers" }, "Search the customers")) : null,
    el("div", { class: "grid" },
      c.unknown ? null : el("section", { class: "card" }, el("h2", {}, "Profile"), facts([
        ["city", c.city], ["country", c.country], ["credit limit", fmt.num(c.credit_limit)],
        ["stored embedding", c.stored_embedding ? "yes: recommended from their history" : "no: from their features"]])),
      c.unknown ? null : el("section", { class: "card" }, el("h2", {}, `Bought and rated (${profile.bought.length})`),
        profile.bought.length ? el("ul", { class: "results" }, profile.bought.map((p) => el("li", {},
          el("a", { href: `#/products/${encodeURIComponent(p.id)}` }, p.id), ` ${p.name ?? ""} · ${p.product_line ?? ""}`,
          el("span", { class: "muted" }, p.rating == null ? " · not rated" : ` · rated ${p.rating}/5`))))
          : el("p", { class: "muted" }, "Nothing yet.")),
      el("section", { class: "card wide" }, form, results)),
  ];
}

// -- products ----------------------------------------------------------------------------------
async function productSearch(_id, params) {
  const q = params.get("q") || "";
  const found = await api("/products", new URLSearchParams({ q, limit: 50 }));
  return [
    el("h1", {}, "Products"),
    searchForm("Code, name or product line", "q", q, (text) => { location.hash = `#/products?q=${encodeURIComponent(text)}`; }),
    found.length ? table(["code", "name", "product line", "scale", "MSRP", "in stock", "embedded"], found.map((p) => [
      el("a", { href: `#/products/${encodeURIComponent(p.id)}` }, p.id), p.name, p.product_line, p.scale, fmt.num(p.msrp, 2),
      fmt.num(p.quantity_in_stock), p.embedded ? "yes" : "no"]), { numeric: [4, 5] })
      : el("p", { class: "muted" }, "No product matches."),
  ];
}

async function productView(code) {
  const detail = await api(`/products/${encodeURIComponent(code)}`);
  const p = detail.product;
  return [
    el("p", {}, el("a", { href: "#/products" }, "← Products")),
    el("h1", {}, `${p.name ?? p.id} (${p.id})`),
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Attributes"), facts([
        ["product line", p.product_line], ["scale", p.scale], ["vendor", p.vendor], ["MSRP", fmt.num(p.msrp, 2)],
        ["in stock", fmt.num(p.quantity_in_stock)], ["embedded", p.embedded ? "yes" : "no: never bought when the model was trained"]])),
      el("section", { class: "card" }, el("h2", {}, "Similar items"),
        el("p", { class: "muted" }, `strategy ${detail.strategy} · model ${detail.model_version}`),
        table(["product", "name", "line", "score"], detail.similar.map((s) => [
          el("a", { href: `#/products/${encodeURIComponent(s.id)}` }, s.id), s.name ?? "–", s.product_line ?? "–", fmt.score(s.score)]),
        { numeric: [3] }))),
  ];
}

// -- shop as a visitor --------------------------------------------------------------------------
// A visitor the shop does not know browses; each product looked at joins their session (kept
// in this tab) and the session's recommendations are asked again: /sessions/{id}/recommendations
// with the session as `recent`. Each answer says its strategy and how long it took.
const SESSION_KEY = "recpipe-visitor";

function visitorSession() {
  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  if (saved && saved.id && Array.isArray(saved.recent)) return saved;
  const fresh = { id: `page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, recent: [] };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(fresh));
  return fresh;
}

async function shopView(_id, params) {
  const session = visitorSession();
  const q = params.get("q") || "";
  const found = await api("/products", new URLSearchParams({ q, limit: 12 }));
  const looked = el("section", { class: "card", id: "session" });
  const results = el("section", { class: "card wide", id: "visitor-recommendations", "aria-live": "polite" });
  let latest = 0;
  const save = () => sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  const look = (code) => { session.recent = [...session.recent.filter((c) => c !== code), code].slice(-20); save(); show(); };
  const lookButton = (code) => el("button", { type: "button", class: "look", "data-look": code, onclick: () => look(code) }, `Look at ${code}`);

  async function show() {
    const mine = ++latest;
    looked.replaceChildren(el("h2", {}, `Your session (${session.recent.length})`),
      session.recent.length ? el("ol", { class: "results" }, session.recent.map((code) => el("li", {}, code)))
        : el("p", { class: "muted" }, "Nothing looked at yet: the most popular products are shown."),
      el("button", { type: "button", id: "start-over", onclick: () => { session.recent = []; save(); show(); } }, "Start over"));
    results.setAttribute("aria-busy", "true");
    const started = performance.now();
    try {
      const rec = await api(`/sessions/${encodeURIComponent(session.id)}/recommendations`,
        new URLSearchParams({ k: 8, recent: session.recent.join(",") }));
      const took = performance.now() - started;
      if (mine !== latest) return;
      results.replaceChildren(el("h2", {}, "Recommended for this visitor"),
        el("p", { class: "muted", id: "answer" }, `strategy ${rec.strategy} · answered in ${took.toFixed(0)} ms · model ${rec.model_version}`),
        rec.items.length ? table(["#", "product", "product line", "score", ""], rec.items.map((item, i) => [
          i + 1, el("a", { href: `#/products/${encodeURIComponent(item.id)}`, "data-recommended": item.id }, item.id),
          item.product_line ?? "–", fmt.score(item.score), lookButton(item.id)]), { numeric: [0, 3] })
          : el("p", { class: "muted" }, "Nothing to recommend."));
    } catch (error) {
      if (mine === latest) results.replaceChildren(problem(error));
    }
    results.removeAttribute("aria-busy");
  }

  show();
  return [
    el("h1", {}, "Shop as a visitor"),
    el("p", { class: "muted" }, "Look at products: each one joins your session, and the recommendations follow it."),
    searchForm("Find products (code, name or product line)", "q", q, (text) => { location.hash = `#/shop?q=${encodeURIComponent(text)}`; }),
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Products"),
        found.length ? table(["product", "name", "line", ""], found.map((p) => [
          el("a", { href: `#/products/${encodeURIComponent(p.id)}` }, p.id), p.name ?? "–", p.product_line ?? "–", lookButton(p.id)]))
          : el("p", { class: "muted" }, "No product matches.")),
      looked, results),
  ];
}

// -- live --------------------------------------------------------------------------------------
async function liveView(_id, _params, mine) {
  const body = el("div", { "aria-live": "polite" });
  async function update() {
    const live = await api("/live", new URLSearchParams({ n: 25 }));
    if (!live.ok) { body.replaceChildren(problem({ message: live.error, hint: live.hint })); return; }
    const rows = live.records.slice().reverse().map((r) => [
      fmt.when(r.event_time), r.session_id, r.customer_number ?? "visitor",
      (r.browse_history || []).map((b) => b.product_code + (b.in_shopping_cart ? " (in cart)" : "")).join(", ") || "–",
      (r.recommended_items || []).map((i) => i.id).join(", ") || "–", r.strategy ?? "–"]);
    body.replaceChildren(
      el("p", { class: "muted" }, `${live.records.length} latest records from ${live.sink} · read ${fmt.when(live.read_at)} · refreshes every 3 s`),
      rows.length ? table(["event time", "session", "customer", "browsed", "recommended", "strategy"], rows)
        : el("p", { class: "muted" }, "Nothing delivered yet: `recpipe stream produce`, then `recpipe stream deliver`."));
  }
  await update();
  if (current(mine)) refresh = setInterval(() => update().catch((error) => body.replaceChildren(problem(error))), 3000);
  return [el("h1", {}, "Live"), body];
}

// -- pipeline ----------------------------------------------------------------------------------
function card(title, section, draw, wide = false) {
  return el("section", { class: `card${wide ? " wide" : ""}` }, el("h2", {}, title),
    section.ok ? draw(section) : problem({ message: section.error, hint: section.hint }));
}

function epochTicks(first, last) {  // whole epochs, at most about eight labels
  const step = Math.max(1, Math.ceil((last - first) / 8));
  const ticks = [];
  for (let e = Math.ceil(first); e <= last; e += step) ticks.push(e);
  return ticks;
}

function lineChart(series, { yLabel, width = 560, height = 220 }) {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return el("p", { class: "muted" }, "No history.");
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const pad = { l: 56, r: 12, t: 10, b: 34 };
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0 || 1)) * (height - pad.t - pad.b);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${yLabel} by epoch` },
    svg("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, stroke: "#8a94a3" }),
    svg("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, stroke: "#8a94a3" }),
    svg("text", { x: pad.l - 4, y: pad.t + 8, "text-anchor": "end" }, y1.toFixed(3)),
    svg("text", { x: pad.l - 4, y: height - pad.b, "text-anchor": "end" }, y0.toFixed(3)),
    epochTicks(x0, x1).map((e) => [
      svg("line", { x1: sx(e), y1: height - pad.b, x2: sx(e), y2: height - pad.b + 4, stroke: "#8a94a3" }),
      svg("text", { x: sx(e), y: height - pad.b + 15, "text-anchor": "middle" }, e)]),
    svg("text", { x: width - pad.r, y: height - 2, "text-anchor": "end" }, "epoch"),
    series.map((s) => svg("polyline", { fill: "none", stroke: s.color, "stroke-width": 2,
      points: s.points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" ") })));
  return el("figure", {}, chart, el("figcaption", { class: "legend" }, series.map((s) =>
    el("span", {}, el("span", { class: "swatch", style: `background:${s.color}` }), s.name))));
}

function barChart(rows, { label }) {
  const width = 560, bar = 22, height = rows.length * (bar + 8) + 8, left = 120;
  const top = Math.max(...rows.map((r) => r.value), 1e-9);
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    rows.map((r, i) => [
      svg("text", { x: left - 6, y: 8 + i * (bar + 8) + bar * 0.7, "text-anchor": "end" }, r.label),
      svg("rect", { x: left, y: 8 + i * (bar + 8), width: ((width - left - 60) * r.value) / top, height: bar,
                    fill: r.highlight ? "#0b57b0" : "#8a94a3" }),
      svg("text", { x: left + ((width - left - 60) * r.value) / top + 4, y: 8 + i * (bar + 8) + bar * 0.7 }, r.value.toFixed(3))]));
}

function evaluation(model) {
  const m = model.metrics || {};
  const rankers = [["recpipe (this model)", m, true], ...Object.entries(m.baselines || {}).map(([name, b]) => [name, b, false])];
  return [
    barChart(rankers.filter(([, r]) => typeof r.recall_at_10 === "number").map(([name, r, mine]) => ({ label: name, value: r.recall_at_10, highlight: mine })),
      { label: "Recall@10 of the model and its baselines" }),
    table(["ranker", "recall@10", "NDCG@10", "coverage", "cold start recall@10"], rankers.map(([name, r]) => [
      name, fmt.score(r.recall_at_10), fmt.score(r.ndcg_at_10), fmt.score(r.coverage), fmt.score(r.cold_start?.recall_at_10)]),
    { numeric: [1, 2, 3, 4], caption: "held-out interactions of the training set (the model manifest's metrics)" }),
  ];
}

function nextItem(model) {  // issue 22: each customer's latest purchase from the ones before it
  const n = (model.metrics || {}).next_item || {};
  if (!n.known_customers) return [el("p", { class: "muted" }, n.skipped || "No next-item evaluation in this model.")];
  const names = ["session", "without_session", "popularity", "ease", "session_knn", "oracle"];
  const label = { session: "recpipe with the session", without_session: "recpipe without the session", popularity: "popularity",
                  ease: "EASE", session_knn: "session-kNN", oracle: "the generator's oracle" };
  const cell = (who, name, metric) => fmt.score(n[who]?.[name]?.[metric]);
  return [
    barChart(names.filter((name) => typeof n.known_customers[name]?.hit_at_10 === "number").map((name) => ({
      label: label[name], value: n.known_customers[name].hit_at_10, highlight: name === "session" })),
    { label: "Next-item Hit@10 for known customers" }),
    table(["ranker", "known: Hit@10", "known: MRR@10", "visitors: Hit@10", "visitors: MRR@10"],
      names.filter((name) => n.known_customers[name] || n.new_visitors?.[name]).map((name) => [label[name],
        cell("known_customers", name, "hit_at_10"), cell("known_customers", name, "mrr_at_10"),
        cell("new_visitors", name, "hit_at_10"), cell("new_visitors", name, "mrr_at_10")]),
      { numeric: [1, 2, 3, 4], caption: "each customer's latest purchase, from the 20 before it (the model manifest's metrics.next_item)" }),
  ];
}

function trainingCurve(model) {
  const history = model.history || [];
  const series = [
    { name: "validation recall", color: COLORS[0], points: history.filter((h) => h.val_recall != null).map((h) => [h.epoch, h.val_recall]) },
  ];
  const losses = [
    { name: "training loss", color: COLORS[1], points: history.filter((h) => h.train_loss != null).map((h) => [h.epoch, h.train_loss]) },
    { name: "validation loss", color: COLORS[2], points: history.filter((h) => h.val_loss != null).map((h) => [h.epoch, h.val_loss]) },
  ];
  return [lineChart(series.filter((s) => s.points.length), { yLabel: "validation recall" }),
          lineChart(losses.filter((s) => s.points.length), { yLabel: "loss" }),
          el("p", { class: "muted" }, `best epoch ${model.best_epoch ?? "–"}`)];
}

async function itemMap() {
  const map = await api("/pipeline/item_map", new URLSearchParams({ limit: 5000 }));
  if (!map.points.length) return el("p", { class: "muted" }, "No items loaded.");
  const lines = [...new Set(map.points.map((p) => p.product_line ?? "unknown"))].sort();
  const color = Object.fromEntries(lines.map((l, i) => [l, COLORS[i % COLORS.length]]));
  const xs = map.points.map((p) => p.x), ys = map.points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const size = 420, pad = 10;
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (size - 2 * pad);
  const sy = (y) => size - pad - ((y - y0) / (y1 - y0 || 1)) * (size - 2 * pad);
  return el("figure", {},
    svg("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": `${map.items} item embeddings on their two main axes, coloured by product line` },
      map.points.map((p) => svg("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 3, fill: color[p.product_line ?? "unknown"], "fill-opacity": 0.75 },
        svg("title", {}, `${p.id} · ${p.product_line ?? "unknown"}`)))),
    el("figcaption", {}, el("div", { class: "legend" }, lines.map((l) => el("span", {}, el("span", { class: "swatch", style: `background:${color[l]}` }), l))),
      el("p", { class: "muted" }, `${map.items} items; the two axes hold ${((map.variance[0] + map.variance[1]) * 100).toFixed(0)}% of the variance (PCA)`)));
}

function online(o) {  // issue 23: `recpipe report`, from the lake as `recpipe etl events` left it
  const rate = (r) => `${fmt.num(r.rate * 100, 1)}% (${fmt.num(r.low * 100, 1)}–${fmt.num(r.high * 100, 1)})`;
  const a = o.attribution || {};
  if (!(o.overall || []).length) {
    return [el("p", { class: "muted" }, prose("No impressions read yet: deliver the stream, then `recpipe etl events`."))];
  }
  return [
    table(["source", "model", "strategy", "lists shown", "click-through", "add-to-cart", "purchase"],
      o.overall.map((x) => [x.source, x.model_version, x.strategy, fmt.num(x.impressions), rate(x.ctr), rate(x.cart_rate),
        rate(x.purchase_rate)]), { numeric: [3, 4, 5, 6], caption: "rates per list shown, with 95% intervals" }),
    facts([["attributed", `${fmt.num(a.attributed)} of ${fmt.num(a.pointing)} products picked from a list`],
      ["newest event", fmt.when(o.newest_event)], ["sink last read", fmt.when(o.read_at)],
      ["products vs training (PSI)", o.drift?.products ? `${fmt.num(o.drift.products.psi, 3)}${o.drift.products.flagged ? " — drifting" : ""}` : "–"],
      ["click-through drifting", ((o.drift?.click_through || []).filter((x) => x.flagged).map((x) => x.model_version).join(", ")) || "none"]]),
  ];
}

function experiment(v) {  // issue 24: `recpipe experiments`, running in the vector database
  const e = v.experiment;
  if (!e) {
    return [el("p", { id: "pipeline-experiment", class: "muted" }, prose("No experiment runs: every shopper gets the serving model (`recpipe experiments start`)."))];
  }
  return [
    facts([["running", el("span", { id: "pipeline-experiment" }, e.name)], ["since", fmt.when(e.started_at)]]),
    table(["variant", "shows", "shoppers"], e.variants.map((x) => [x.name, x.target, `${fmt.num(x.share, 1)}%`]),
      { caption: "every answer says its variant; `recpipe experiments report` compares them" }),
  ];
}

async function pipelineView() {
  const p = await api("/pipeline");
  const mapCard = el("section", { class: "card" }, el("h2", {}, "Item embeddings"), el("p", { class: "muted" }, "Loading…"));
  itemMap().then((figure) => mapCard.replaceChildren(el("h2", {}, "Item embeddings"), figure))
    .catch((error) => mapCard.replaceChildren(el("h2", {}, "Item embeddings"), problem(error)));
  return [
    el("h1", {}, "Pipeline"),
    el("div", { class: "grid" },
      card("Training set (ETL)", p.etl, (e) => [facts([
        ["version", e.version], ["published", fmt.when(e.created_at)], ["engine", e.engine], ["source", e.source],
        ["rows", fmt.num(e.rows)], ["partitions", fmt.num(e.partitions)], ["files", `${fmt.num(e.files)} (${fmt.bytes(e.bytes)})`],
        ["quarantined", `${fmt.num(e.quarantine?.rows)} (${fmt.num((e.quarantine?.fraction || 0) * 100, 2)}%)`], ["location", e.location]]),
        Object.keys(e.quarantine?.by_reason || {}).length ? table(["quarantine reason", "rows"],
          Object.entries(e.quarantine.by_reason).map(([reason, n]) => [reason, fmt.num(n)]), { numeric: [1] }) : null]),
      card("Model", p.model, (m) => [facts([
        ["version", el("span", { id: "pipeline-model-version" }, m.model_version)], ["objective", m.objective],
        ["published", fmt.when(m.created_at)], ["artifacts", m.artifacts]]), ...evaluation(m)], true),
      card("Next item (sessions)", p.model, nextItem, true),
      card("Training curve", p.model, trainingCurve, true),
      card("Vector database", p.vectors, (v) => [facts([
        ["serving model", v.loaded?.model_version], ["loaded", fmt.when(v.loaded?.loaded_at)],
        ["HNSW", v.hnsw ? `m=${v.hnsw.m}, ef_construction=${v.hnsw.ef_construction}, cosine` : "–"]]),
        table(["model", "state", "items", "users", "loaded", "gate"], (v.models || []).map((m) => [m.version,
          m.serving ? "serving" : "loaded", fmt.num(m.items), fmt.num(m.users), fmt.when(m.loaded_at), m.gate || "–"]),
          { numeric: [2, 3], caption: "models loaded side by side (`recpipe models list`)" }),
        table(["table", "rows", "size", "indexes"], (v.tables || []).map((t) => [t.table, fmt.num(t.rows), fmt.bytes(t.bytes), t.indexes.join(", ") || "–"]),
          { numeric: [1, 2] })]),
      card("Experiment", p.vectors, experiment),
      card("Stream", p.stream, (s) => [facts([["stream", s.stream], ["sink", s.sink], ["objects written", fmt.num(s.objects)],
        ["failed objects", fmt.num(s.failed_objects)], ["records", Object.entries(s.counts || {}).map(([k, v]) => `${k} ${fmt.num(v)}`).join(" · ") || "–"]]),
        table(["shard", "delivered", "head", "lag"], (s.shards || []).map((sh) => [sh.shard, sh.position ?? "–", sh.head ?? "–", fmt.num(sh.lag)]), { numeric: [3] })]),
      card("Online: what the lists shown earned", p.online, online, true),
      card("This service", p.service, (s) => [el("p", { class: "muted" }, `up ${fmt.num(s.uptime_seconds)} s`),
        table(["route", "method", "requests", "per s", "4xx", "5xx", "p50 ms", "p99 ms"], s.routes.map((r) => [
          r.route, r.method, fmt.num(r.requests), fmt.num(r.requests / Math.max(s.uptime_seconds, 1), 2), fmt.num(r["4xx"]), fmt.num(r["5xx"]),
          fmt.num(r.p50_ms, 1), fmt.num(r.p99_ms, 1)]), { numeric: [2, 3, 4, 5, 6, 7] })], true),
      mapCard),
  ];
}

// -- start -------------------------------------------------------------------------------------
async function header() {
  try {
    const ready = await api("/ready");
    document.getElementById("model").textContent = ready.model_version ? `model ${ready.model_version}` : "";
  } catch { /* /ready's 503 is shown by the views that need the database */ }
}

window.addEventListener("hashchange", render);
render().then(header);
