// The batch editor: rows typed, added, pasted or imported; each checked by the server as it is entered.
"use strict";
(function () {
  const root = document.getElementById("editor");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const tbody = document.getElementById("rows");
  const summary = document.getElementById("summary");
  const submit = document.getElementById("submit");
  const submitError = document.getElementById("submit-error");
  const placing = document.getElementById("placing");
  const placeProgress = document.getElementById("place-progress");
  const placeText = document.getElementById("place-text");
  const MAX_ROWS = 10000;
  const CHUNK = 1000;

  let rows = []; // {pc, account, state: "empty"|"checking"|"ok"|"bad", error, price, tr}
  let dirty = new Set();
  let timer = null;
  let busy = false;
  let batchKey = null; // client-generated merchant_batch_id; reused while the body is unchanged
  let lastBody = null;

  function money(fen) {
    const sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    return sign + "¥" + Math.floor(fen / 100).toLocaleString("en-US") + "." + String(fen % 100).padStart(2, "0");
  }

  function newKey() {
    const rnd = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/-/g, "");
    return "web-" + Date.now().toString(36) + "-" + rnd.slice(0, 16);
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addRow(pc, account, render) {
    if (rows.length >= MAX_ROWS) return null;
    const r = { pc: pc || "", account: account || "", state: "empty", error: null, price: null, tr: null };
    rows.push(r);
    if (render !== false) renderRow(r);
    if (r.pc || r.account) markDirty(r);
    return r;
  }

  function renderRow(r) {
    const tr = el("tr");
    const n = el("td", { class: "num rownum" });
    const pc = el("input", { list: "products", placeholder: "airtime.50", "aria-label": "Product", class: "pc", maxlength: "64" });
    const acct = el("input", { placeholder: "13800138000", "aria-label": "Account", class: "acct", maxlength: "254" });
    pc.value = r.pc;
    acct.value = r.account;
    const check = el("td", { class: "check" });
    const del = el("button", { type: "button", class: "link danger", "aria-label": "Remove row" }, "✕");
    const tdPc = el("td"), tdAcct = el("td"), tdDel = el("td");
    tdPc.append(pc); tdAcct.append(acct); tdDel.append(del);
    tr.append(n, tdPc, tdAcct, check, tdDel);
    pc.addEventListener("input", () => { r.pc = pc.value; markDirty(r); });
    acct.addEventListener("input", () => { r.account = acct.value; markDirty(r); });
    acct.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { ev.preventDefault(); const nr = addRow("", ""); renumber(); nr && nr.tr.querySelector(".pc").focus(); }
    });
    del.addEventListener("click", () => { rows = rows.filter((x) => x !== r); tr.remove(); dirty.delete(r); renumber(); update(); });
    r.tr = tr;
    tbody.append(tr);
    paint(r);
  }

  function renumber() {
    rows.forEach((r, i) => { if (r.tr) r.tr.querySelector(".rownum").textContent = String(i + 1); });
  }

  function paint(r) {
    if (!r.tr) return;
    const cell = r.tr.querySelector(".check");
    r.tr.classList.toggle("invalid", r.state === "bad");
    r.tr.dataset.state = r.state;
    cell.textContent = "";
    if (r.state === "ok") {
      cell.append(el("span", { class: "ok" }, "✓ " + money(r.price)));
    } else if (r.state === "bad") {
      cell.append(el("span", { class: "err", "data-testid": "row-error" }, r.error.code + ": " + r.error.message));
    } else if (r.state === "checking") {
      cell.append(el("span", { class: "muted" }, "checking…"));
    }
  }

  function markDirty(r) {
    r.state = (r.pc.trim() || r.account.trim()) ? "checking" : "empty";
    paint(r);
    if (r.state === "checking") dirty.add(r); else dirty.delete(r);
    clearTimeout(timer);
    timer = setTimeout(validate, 250);
    update();
  }

  async function validate() {
    const batch = Array.from(dirty);
    dirty = new Set();
    for (let i = 0; i < batch.length; i += CHUNK) {
      const part = batch.slice(i, i + CHUNK);
      const sent = part.map((r) => ({ product_code: r.pc.trim(), account: r.account.trim() }));
      let data;
      try {
        const resp = await fetch("/web/api/validate", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ rows: sent }),
        });
        if (resp.status === 401) { location.href = "/login?next=/batches/new"; return; }
        data = await resp.json();
      } catch (e) {
        part.forEach((r) => dirty.add(r));
        timer = setTimeout(validate, 2000);
        return;
      }
      part.forEach((r, j) => {
        // The row changed while we were asking: its newer check is already queued.
        if (r.pc.trim() !== sent[j].product_code || r.account.trim() !== sent[j].account) return;
        const res = data.items[j];
        r.state = res.ok ? "ok" : "bad";
        r.error = res.error;
        r.price = res.price || null;
        paint(r);
      });
    }
    update();
  }

  function filled() { return rows.filter((r) => r.pc.trim() || r.account.trim()); }

  function update() {
    const f = filled();
    const ok = f.filter((r) => r.state === "ok");
    const bad = f.filter((r) => r.state === "bad");
    const checking = f.filter((r) => r.state === "checking");
    const total = ok.reduce((s, r) => s + (r.price || 0), 0);
    summary.textContent = "";
    if (!f.length) { summary.textContent = "No rows yet."; }
    else {
      summary.append(el("strong", { "data-testid": "count-rows" }, String(f.length)), " rows · ",
        el("strong", { class: "ok", "data-testid": "count-valid" }, String(ok.length)), " valid · ",
        el("strong", { class: "bad", "data-testid": "count-invalid" }, String(bad.length)), " with errors",
        checking.length ? " · " + checking.length + " being checked" : "",
        " · total ", el("strong", { "data-testid": "total" }, money(total)));
      if (bad.length) summary.append(" — rows with errors are reported and not placed.");
    }
    submit.disabled = busy || !f.length || f.length > MAX_ROWS || checking.length > 0;
  }

  function parseLines(text) {
    const out = [];
    for (let line of text.split(/\r?\n/)) {
      if (!line.trim()) continue;
      const sep = line.includes("\t") ? "\t" : (line.includes(",") ? "," : (line.includes(";") ? ";" : /\s+/));
      const cells = line.split(sep).map((c) => c.trim().replace(/^"(.*)"$/, "$1").trim());
      if (!out.length && /product/i.test(cells[0] || "")) continue; // a header line
      out.push([cells[0] || "", cells.slice(1).join("").trim() ? cells[1] : ""]);
    }
    return out;
  }

  function addMany(pairs) {
    // Drop trailing blank rows first so pasted rows follow the last real one.
    while (rows.length && !rows[rows.length - 1].pc && !rows[rows.length - 1].account) {
      const r = rows.pop(); r.tr && r.tr.remove(); dirty.delete(r);
    }
    const frag = document.createDocumentFragment();
    const saved = tbody;
    for (const [pc, acct] of pairs) {
      const r = addRow(pc, acct, false);
      if (!r) { showError("A batch holds at most " + MAX_ROWS + " rows."); break; }
    }
    for (const r of rows) if (!r.tr) { renderRow(r); frag.append(r.tr); }
    saved.append(frag);
    renumber();
    update();
  }

  function showError(msg) { submitError.textContent = msg; submitError.hidden = !msg; }

  document.getElementById("add-row").addEventListener("click", () => { const r = addRow("", ""); renumber(); update(); r && r.tr.querySelector(".pc").focus(); });
  document.getElementById("add-many").addEventListener("click", () => {
    const n = Math.max(1, Math.min(MAX_ROWS - rows.length, parseInt(document.getElementById("many-count").value, 10) || 1));
    for (let i = 0; i < n; i++) addRow("", "");
    renumber(); update();
  });
  document.getElementById("paste-add").addEventListener("click", () => {
    const ta = document.getElementById("paste");
    addMany(parseLines(ta.value));
    ta.value = "";
  });
  document.getElementById("csv-file").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { addMany(parseLines(String(reader.result).replace(/^\uFEFF/, ""))); ev.target.value = ""; };
    reader.readAsText(file);
  });
  document.getElementById("clear-rows").addEventListener("click", () => {
    rows.forEach((r) => r.tr && r.tr.remove()); rows = []; dirty = new Set(); addRow("", ""); renumber(); update();
  });

  submit.addEventListener("click", () => {
    if (busy) return;
    const f = filled();
    if (!f.length) return;
    const body = JSON.stringify({
      merchant_batch_id: "__KEY__",
      rows: f.map((r) => ({ product_code: r.pc.trim(), account: r.account.trim() })),
    });
    // Same rows again (a retry after a lost reply): same key, so the server returns the same batch.
    if (!batchKey || body !== lastBody) batchKey = newKey();
    lastBody = body;
    busy = true;
    update();
    showError("");
    submit.textContent = "Placing…";
    placing.hidden = false;
    placeProgress.removeAttribute("value");
    placeText.textContent = "Sending " + f.length + " rows…";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/web/api/batches");
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) { placeProgress.max = 100; placeProgress.value = Math.round(90 * ev.loaded / ev.total); }
      if (ev.loaded === ev.total) placeText.textContent = "Validating and placing " + f.length + " rows…";
    };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if ((xhr.status === 200 || xhr.status === 201) && data) {
        placeProgress.max = 100; placeProgress.value = 100;
        placeText.textContent = "Placed " + data.valid_rows + " of " + data.total_rows + " rows.";
        location.href = "/batches/" + encodeURIComponent(data.batch_id);
        return;
      }
      fail(data && data.error ? data.error.message : "The server answered " + xhr.status + ".");
    };
    xhr.onerror = () => fail("Network error: nothing may have been placed. Press the button again to retry safely.");
    xhr.send(body.replace('"__KEY__"', JSON.stringify(batchKey)));
  });

  function fail(msg) {
    busy = false;
    placing.hidden = true;
    submit.textContent = "Place batch";
    showError(msg);
    update();
  }

  addRow("", "");
  renumber();
  update();
})();
