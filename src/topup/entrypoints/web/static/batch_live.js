// The batch page: pay once, then watch every row's status (polled about once a second) until it is done.
"use strict";
(function () {
  const root = document.getElementById("batch");
  if (!root) return;
  const id = root.dataset.batchId;
  const csrf = root.dataset.csrf;
  const $ = (x) => document.getElementById(x);
  const tbody = $("rows");
  const FINAL = new Set(["completed", "cancelled"]);
  const trs = new Map(); // row number -> tr
  let since = null;
  let paying = false;
  let stopped = false;

  function money(fen) {
    if (fen === null || fen === undefined) return "";
    const sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    return sign + "¥" + Math.floor(fen / 100).toLocaleString("en-US") + "." + String(fen % 100).padStart(2, "0");
  }
  function label(s) { return String(s).replace(/_/g, " "); }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function message(text, info) {
    const m = $(info ? "info" : "message");
    m.textContent = text || "";
    m.hidden = !text;
  }

  function rowTr(r) {
    let tr = trs.get(r.row);
    if (!tr) {
      tr = el("tr", { "data-row": String(r.row) });
      tr.append(el("td", { class: "num" }, String(r.row)), el("td", {}, r.product_code), el("td", { class: "mono" }, r.account),
        el("td", { class: "mono small" }, r.order_id || ""), el("td", { class: "st" }), el("td", { class: "num price" }),
        el("td", { class: "small detail" }));
      trs.set(r.row, tr);
    }
    const st = tr.querySelector(".st");
    st.textContent = "";
    st.append(el("span", { class: "badge s-" + r.status, "data-testid": "row-status" }, label(r.status)));
    tr.dataset.status = r.status;
    tr.querySelector(".price").textContent = money(r.price);
    const detail = tr.querySelector(".detail");
    detail.textContent = r.error_code ? r.error_code + ": " + (r.error || "") : (r.error || "");
    detail.classList.toggle("err", Boolean(r.error));
    return tr;
  }

  function render(data) {
    const b = data.batch;
    const status = $("status");
    status.textContent = label(b.status);
    status.className = "badge big s-" + b.status;
    $("valid-rows").textContent = b.valid_rows;
    for (const k of ["succeeded", "failed", "processing", "cancelled"]) $("c-" + k).textContent = b.counts[k];
    $("refunded").textContent = money(b.payment ? b.payment.refunded : 0);
    const done = b.counts.succeeded + b.counts.failed + b.counts.cancelled;
    $("progress").max = Math.max(1, b.valid_rows);
    $("progress").value = b.valid_rows ? done : 1;
    const pending = b.payment && b.payment.status === "pending";
    $("pay-box").hidden = !(b.status === "awaiting_payment" && !pending);
    $("pending-box").hidden = !(b.status === "awaiting_payment" && pending);
    if (pending) $("pay-link").href = b.payment.pay_url;
    if (!paying) for (const x of ["pay-balance", "pay-sandbox", "cancel"]) $(x).disabled = false;
    if (b.payment && b.payment.status === "declined") message("The sandbox payment was declined; the batch is cancelled.", true);
    else if (b.payment && b.payment.status === "expired") message("The payment expired or was closed; the batch is cancelled.", true);
    else if (b.status === "completed") message("Every order is final. Failed rows were refunded to where the money came from.", true);
    else if (b.status === "processing") message("Paid (" + b.payment.method + "). Orders are being fulfilled…", true);
    if (data.full) {
      tbody.textContent = "";
      trs.clear();
      const frag = document.createDocumentFragment();
      for (const r of data.rows) frag.append(rowTr(r));
      tbody.append(frag);
    } else {
      for (const r of data.rows) rowTr(r);
    }
    root.dataset.status = b.status;
  }

  async function poll() {
    if (stopped) return;
    let data = null;
    try {
      const q = since === null ? "" : "?since=" + encodeURIComponent(since);
      const resp = await fetch("/web/api/batches/" + encodeURIComponent(id) + q, { credentials: "same-origin" });
      if (resp.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      if (resp.ok) data = await resp.json();
    } catch (e) { data = null; }
    if (data) {
      render(data);
      since = data.next_since;
      if (FINAL.has(data.batch.status)) { stopped = true; return; }
    }
    setTimeout(poll, 1000);
  }

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { status: resp.status, data };
  }

  async function pay(method) {
    if (paying) return;
    paying = true;
    for (const x of ["pay-balance", "pay-sandbox", "cancel"]) $(x).disabled = true;
    message("");
    try {
      const r = await post("/web/api/batches/" + encodeURIComponent(id) + "/payment", { method });
      if ((r.status === 201 || r.status === 200) && r.data) {
        if (r.data.pay_url && r.data.status === "pending") { location.href = r.data.pay_url; return; }
      } else if (r.status === 409) {
        message(r.data && r.data.error ? r.data.error.message : "Already paid.", true);
      } else {
        message(r.data && r.data.error ? r.data.error.message : "Payment failed (" + r.status + ").");
      }
    } catch (e) {
      message("Network error; the page will show whether the payment went through.");
    }
    paying = false;
    since = null; // a full refresh after paying
    if (stopped) { stopped = false; poll(); }
  }

  $("pay-balance").addEventListener("click", () => pay("balance"));
  $("pay-sandbox").addEventListener("click", () => pay("sandbox"));
  $("cancel").addEventListener("click", async () => {
    if (!confirm("Cancel this batch and all its orders?")) return;
    $("cancel").disabled = true;
    const r = await post("/web/api/batches/" + encodeURIComponent(id) + "/cancel");
    if (r.status !== 200) message(r.data && r.data.error ? r.data.error.message : "Could not cancel.");
    since = null;
  });
  poll();
})();
