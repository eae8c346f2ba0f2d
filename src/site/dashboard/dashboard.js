// The dashboard's script: fills the tables from the admin API, follows the
// trace as server-sent events, and redraws what changed twice a second.
// Values from the target are written as text, never as markup; only the
// timeline, drawn and escaped by the server, is inserted as HTML.
"use strict";
(() => {
  const $ = (css) => document.querySelector(css);
  const state = { page: 0, pages: 1, dirty: true, busy: false, drawn: 0 };
  // The timeline reads the whole recent trace: redraw it at most this often.
  const TIMELINE_MS = 2000;

  const status = (text, cls) => {
    const s = $("#status");
    s.textContent = text;
    s.className = cls || "";
  };

  const cell = (tr, text, cls) => {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  };

  const get = async (url) => {
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r;
  };

  const where = (at) => [at.ip, at.asn, at.class].filter((x) => x).join(" ");

  function sessions(data) {
    state.pages = data.pages;
    state.page = data.page;
    $("#total").textContent = `(${data.total})`;
    $("#pageinfo").textContent = `page ${data.page + 1} of ${data.pages}`;
    const body = document.createElement("tbody");
    for (const s of data.sessions) {
      const tr = document.createElement("tr");
      tr.dataset.session = s.id;
      tr.dataset.state = s.state;
      cell(tr, s.id.slice(0, 8));
      cell(tr, s.account);
      cell(tr, s.state, s.state === "active" ? "state-active" : "state-dead");
      cell(tr, s.requests);
      cell(tr, `${s.age_s.toFixed(1)} s`);
      cell(tr, where(s.birth));
      cell(tr, where(s.last), s.last.asn && s.last.asn !== s.birth.asn ? "moved" : "");
      cell(tr, [s.birth.ja4, s.birth.user_agent].filter((x) => x).join(" "), "small");
      body.appendChild(tr);
    }
    $("#sessions tbody").replaceWith(body);
  }

  function accounts(data) {
    const body = document.createElement("tbody");
    for (const name of Object.keys(data).sort()) {
      const a = data[name];
      const tr = document.createElement("tr");
      tr.dataset.account = name;
      cell(tr, name);
      cell(tr, a.invalidations.map((i) => i[1]).join(", "));
      cell(tr, a.bans);
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.textContent = "revoke its sessions";
      revoke.onclick = () => act(`/dashboard/revoke?account=${encodeURIComponent(name)}`);
      cell(tr, "").appendChild(revoke);
      body.appendChild(tr);
    }
    $("#accounts tbody").replaceWith(body);
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    state.dirty = false;
    try {
      sessions(await (await get(`/dashboard/sessions?page=${state.page}`)).json());
      accounts(await (await get("/dashboard/accounts")).json());
      if (Date.now() - state.drawn >= TIMELINE_MS) {
        state.drawn = Date.now();
        $("#timeline").innerHTML = await (await get("/dashboard/timeline")).text();
      } else {
        state.dirty = true;
      }
    } catch (e) {
      status(String(e.message || e), "error");
    }
    state.busy = false;
  }

  async function act(url) {
    const headers = { "x-sessionrange-dashboard": "1" };
    const r = await fetch(url, { method: "POST", credentials: "same-origin", headers });
    status(r.ok ? `${url}: done` : `${url}: ${r.status}`, r.ok ? "live" : "error");
    state.dirty = true;
  }

  // One trace line as a short sentence, and its class.
  function describe(e) {
    const t = new Date(e.at).toISOString().slice(11, 23);
    const who = e.session ? `${e.session.slice(0, 8)} ${e.account || ""}` : "";
    switch (e.type) {
      case "decision": {
        const verdict = e.reason ? `${e.verdict}(${e.reason})` : e.verdict;
        const cls = e.verdict === "allow" ? "" : "refused";
        return [`${t} ${e.kind} ${who}: ${verdict}${e.on_dead_session ? " on a dead session" : ""}`, cls];
      }
      case "proxy":
        return [`${t} proxy ${e.node} #${e.conn}: ${e.event}`, "proxy"];
      default:
        return [`${t} ${e.type} ${who} ${e.outcome || e.action || ""}`, ""];
    }
  }

  function log(line) {
    let e;
    try {
      e = JSON.parse(line);
    } catch (_) {
      return;
    }
    const [text, cls] = describe(e);
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    const list = $("#log");
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
  }

  const events = new EventSource("/dashboard/events");
  events.onopen = () => status("live", "live");
  events.onmessage = (m) => {
    log(m.data);
    state.dirty = true;
  };
  events.onerror = () => status("reconnecting…", "error");

  $("#prev").onclick = () => {
    state.page = Math.max(0, state.page - 1);
    state.dirty = true;
  };
  $("#next").onclick = () => {
    state.page = Math.min(state.pages - 1, state.page + 1);
    state.dirty = true;
  };
  $("#reset").onclick = () => act("/dashboard/reset");
  setInterval(() => {
    if (state.dirty) refresh();
  }, 500);
  refresh();
})();
