// The allowance page: everything goes through the admin API with the session cookie.
"use strict";

const $ = (id) => document.getElementById(id);
let pollTimer = null;

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) {
    window.location.reload();
    throw new Error("signed out");
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.detail || ("HTTP " + r.status));
  return data;
}

function showError(e) {
  const p = $("error");
  p.textContent = e ? String(e.message || e) : "";
  p.hidden = !e;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (cls) el.className = cls;
  return el;
}

// A small bar chart of sat drawn per day, as inline SVG.
function chart(perDay) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 4 * perDay.length + 2, h = 24;
  svg.setAttribute("width", w * 2);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("class", "chart");
  const max = Math.max(1, ...perDay);
  perDay.forEach((v, i) => {
    const bh = Math.round((v / max) * (h - 2));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", 1 + i * 4);
    r.setAttribute("y", h - 1 - bh);
    r.setAttribute("width", 3);
    r.setAttribute("height", Math.max(bh, v > 0 ? 1 : 0));
    const t = document.createElementNS(ns, "title");
    t.textContent = v + " sat";
    r.appendChild(t);
    svg.appendChild(r);
  });
  return svg;
}

function showInvoice(view, what) {
  const unpaid = view.fundings.filter((f) => f.state === "unpaid");
  const f = unpaid[unpaid.length - 1];
  if (!f) return;
  $("pay-for").textContent = what + " (" + f.amount + " sat)";
  $("qr").src = "/admin/v1/qr.svg?data=" + encodeURIComponent(f.invoice);
  $("invoice").value = f.invoice;
  $("paid-status").textContent = "Waiting for the payment…";
  $("paid-status").className = "waiting";
  $("pay-section").hidden = false;
}

function showSecret(title, note, value) {
  $("secret-title").textContent = title;
  $("secret-note").textContent = note;
  $("secret").value = value;
  $("secret-section").hidden = false;
  $("copied").hidden = true;
}

// Polls one allowance until its newest invoice is paid.
function watch(id, quoteId, credential) {
  if (pollTimer) clearInterval(pollTimer);
  const tick = async () => {
    try {
      const v = await api("GET", "/admin/v1/allowances/" + id);
      const f = v.fundings.find((x) => x.quote_id === quoteId);
      if (v.token) {
        stop("Paid.");
        showSecret("The agent's token", "A cashuB token worth exactly " + v.amount +
          " sat. It is shown once: copy it now and hand it to the agent.", v.token);
      } else if (f && f.state === "paid") {
        stop("Paid.");
        if (credential) {
          showSecret("The agent's credential", "Run `agent-wallet allowance connect` with it. " +
            "It is shown once: copy it now.", credential);
        }
      } else if (f && f.state === "expired") {
        stop("The invoice expired.");
      }
      if (!pollTimer) refresh();
    } catch (e) {
      showError(e);
    }
  };
  const stop = (msg) => {
    clearInterval(pollTimer);
    pollTimer = null;
    $("paid-status").textContent = msg;
    $("paid-status").className = "paid";
  };
  pollTimer = setInterval(tick, 1000);
  tick();
}

async function create(ev) {
  ev.preventDefault();
  showError(null);
  $("secret-section").hidden = true;
  const metered = $("kind-metered").checked;
  const amount = Number($("amount").value);
  const memo = $("memo").value.trim() || null;
  try {
    let v;
    if (metered) {
      const days = $("expires-days").value;
      const body = {
        amount, memo,
        max_per_draw: Number($("per-draw").value),
        max_per_day: Number($("per-day").value),
        expires_at: days ? Math.floor(Date.now() / 1000) + Number(days) * 86400 : null,
        agent_pubkey: $("agent-pubkey").value.trim() || null,
      };
      v = await api("POST", "/admin/v1/allowances/metered", body);
    } else {
      v = await api("POST", "/admin/v1/allowances/prepaid", { amount, memo });
    }
    showInvoice(v, (metered ? "Metered allowance " : "Prepaid allowance ") + v.id);
    const f = v.fundings[v.fundings.length - 1];
    watch(v.id, f.quote_id, v.credential || null);
    refresh();
  } catch (e) {
    showError(e);
  }
}

async function action(kind, v) {
  showError(null);
  try {
    if (kind === "revoke") {
      if (!window.confirm("Revoke " + v.id + "? The agent's next draw is refused.")) return;
      await api("POST", "/admin/v1/allowances/" + v.id + "/revoke");
    } else if (kind === "withdraw") {
      const invoice = window.prompt("A Lightning invoice to pay from the balance (" + v.balance + " sat):");
      if (!invoice) return;
      await api("POST", "/admin/v1/allowances/" + v.id + "/withdraw", { invoice: invoice.trim() });
    } else if (kind === "topup") {
      const amount = Number(window.prompt("Top up by how many sat?", "1000"));
      if (!amount) return;
      const t = await api("POST", "/admin/v1/allowances/" + v.id + "/topup", { amount });
      showInvoice(t, "Top-up of " + v.id);
      const f = t.fundings[t.fundings.length - 1];
      watch(v.id, f.quote_id, null);
    }
  } catch (e) {
    showError(e);
  }
  refresh();
}

function button(label, cls, onClick) {
  const b = text("button", label, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

async function refresh() {
  let list;
  try {
    list = await api("GET", "/admin/v1/allowances");
  } catch (e) {
    showError(e);
    return;
  }
  const tbody = $("list").querySelector("tbody");
  tbody.replaceChildren();
  for (const v of list) {
    const tr = document.createElement("tr");
    tr.dataset.id = v.id;
    tr.appendChild(text("td", v.id, "id"));
    tr.appendChild(text("td", v.kind, "kind"));
    tr.appendChild(text("td", v.memo || "", "memo"));
    tr.appendChild(text("td", v.state, "state"));
    tr.appendChild(text("td", v.balance, "balance"));
    tr.appendChild(text("td", v.kind === "metered" ? v.drawn_24h : "", "drawn"));
    const c = document.createElement("td");
    if (v.kind === "metered") c.appendChild(chart(v.per_day));
    tr.appendChild(c);
    const actions = document.createElement("td");
    if (v.kind === "metered") {
      if (v.state !== "revoked") {
        actions.appendChild(button("Top up", "topup", () => action("topup", v)));
        actions.appendChild(button("Revoke", "revoke", () => action("revoke", v)));
      }
      if (v.balance > 0) actions.appendChild(button("Withdraw", "withdraw", () => action("withdraw", v)));
    }
    tr.appendChild(actions);
    tbody.appendChild(tr);
  }
}

async function copySecret() {
  const value = $("secret").value;
  try {
    await navigator.clipboard.writeText(value);
  } catch (_) {
    $("secret").select();
    document.execCommand("copy");
  }
  $("copied").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("create-form").addEventListener("submit", create);
  $("copy").addEventListener("click", copySecret);
  const toggle = () => { $("metered-fields").hidden = !$("kind-metered").checked; };
  $("kind-metered").addEventListener("change", toggle);
  $("kind-prepaid").addEventListener("change", toggle);
  toggle();
  refresh();
  setInterval(refresh, 10000);
});
