// The packer's screen: renders the bench's view (edge/view.py, BenchView as JSON)
// from /events, plays a tone per outcome, counts deadlines down, and says so when the
// connection to the bench is lost (it reconnects by itself). Plain script, no
// libraries: nothing is loaded from the internet.
"use strict";

(function () {
  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);

  const HEARTBEAT_MS = 10000; // the server's keep-alive (edge/kiosk/app.py HEARTBEAT)
  const LOST_AFTER_MS = 3 * HEARTBEAT_MS + 2000;
  const RECONNECT_MS = 2000;

  // -- icons (inline SVG: no icon font to go missing) ---------------------------------
  const SVG = {
    check:
      '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="11" fill="currentColor" opacity=".2"/>' +
      '<path d="M6 12.5l4 4 8-9" fill="none" stroke="currentColor" stroke-width="2.8" stroke-linecap="round" stroke-linejoin="round"/></svg>',
    stop:
      '<svg viewBox="0 0 24 24"><path d="M7.5 1.5h9l6 6v9l-6 6h-9l-6-6v-9z" fill="currentColor" opacity=".25" stroke="currentColor" stroke-width="1.5"/>' +
      '<path d="M8 8l8 8M16 8l-8 8" stroke="currentColor" stroke-width="2.8" stroke-linecap="round"/></svg>',
    warn:
      '<svg viewBox="0 0 24 24"><path d="M12 2l10.5 19h-21z" fill="currentColor" opacity=".2" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round"/>' +
      '<path d="M12 9v5.5" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/><circle cx="12" cy="18" r="1.5" fill="currentColor"/></svg>',
    info:
      '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="10.5" fill="none" stroke="currentColor" stroke-width="1.8"/>' +
      '<path d="M12 11v6.5" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/><circle cx="12" cy="7" r="1.5" fill="currentColor"/></svg>',
    scan:
      '<svg viewBox="0 0 24 24"><path d="M3 7V3h4M17 3h4v4M21 17v4h-4M7 21H3v-4" fill="none" stroke="currentColor" stroke-width="2"/>' +
      '<path d="M7 7v10M10 7v10M12.5 7v10M15 7v10M17 7v10" stroke="currentColor" stroke-width="1.5"/></svg>',
    unplugged:
      '<svg viewBox="0 0 24 24"><path d="M4 20L20 4" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>' +
      '<path d="M9 4v4M15 4v2M7 8h8v3a4 4 0 0 1-4 4v5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
    restart:
      '<svg viewBox="0 0 24 24"><path d="M20 12a8 8 0 1 1-2.3-5.7" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/>' +
      '<path d="M20 3v5h-5" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  };

  function glyph(name) {
    const span = document.createElement("span");
    span.className = "glyph";
    span.setAttribute("aria-hidden", "true");
    span.innerHTML = SVG[name]; // our own constant markup, never data from the bench
    return span;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // -- time: the bench's clock, not the browser's --------------------------------------
  let offsetMs = 0; // the bench's wall clock minus this browser's
  let skewMs = 0; // the bench's wall clock minus central's, once central said its time
  const benchNow = () => Date.now() + offsetMs;
  // Deadlines are central's times: count them down on central's clock, so a bench whose
  // clock is hours off (no real-time clock, no time service) still shows the truth.
  const centralNow = () => benchNow() - skewMs;

  function duration(seconds) {
    const s = Math.max(0, Math.round(Math.abs(seconds)));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
    return `${Math.floor(h / 24)} days`;
  }

  function clockTime(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  // "1 h 12 min left" / "overdue by 4 min 10 s", with a class for colour.
  function timeLeft(iso) {
    const due = Date.parse(iso);
    const left = (due - centralNow()) / 1000;
    if (left < 0) return { text: `overdue by ${duration(left)}`, cls: "overdue" };
    return { text: `${duration(left)} left`, cls: left < 15 * 60 ? "soon" : "" };
  }

  // -- sound: a distinct tone per outcome, where the browser allows -------------------
  const Sound = (function () {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    let ctx = null;
    const button = $("sound");

    function state() {
      if (!Ctx) return "none";
      if (!ctx) return "off";
      return ctx.state === "running" ? "on" : "off";
    }

    function show() {
      const s = state();
      root.dataset.audio = s;
      button.hidden = s !== "off";
    }

    function unlock() {
      if (!Ctx) return show();
      try {
        if (!ctx) {
          ctx = new Ctx();
          ctx.onstatechange = show;
        }
        if (ctx.state !== "running") ctx.resume().then(show, show);
      } catch (err) {
        ctx = null;
      }
      show();
    }

    // Notes: [frequency Hz, start s, length s]; each outcome its own shape and wave.
    const TUNES = {
      ok: { wave: "sine", gain: 0.35, notes: [[1320, 0, 0.09]] },
      info: { wave: "triangle", gain: 0.25, notes: [[660, 0, 0.06]] },
      done: { wave: "sine", gain: 0.35, notes: [[784, 0, 0.1], [988, 0.11, 0.1], [1319, 0.22, 0.22]] },
      refused: { wave: "square", gain: 0.18, notes: [[523, 0, 0.14], [392, 0.17, 0.22]] },
      alarm: {
        wave: "sawtooth",
        gain: 0.3,
        notes: [[220, 0, 0.18], [175, 0.22, 0.18], [220, 0.44, 0.18], [175, 0.66, 0.3]],
      },
    };

    function play(outcome) {
      const tune = TUNES[outcome];
      if (!tune || !ctx || ctx.state !== "running") {
        root.dataset.soundMissed = outcome;
        return false;
      }
      const t0 = ctx.currentTime + 0.01;
      for (const [freq, at, len] of tune.notes) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = tune.wave;
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0, t0 + at);
        gain.gain.linearRampToValueAtTime(tune.gain, t0 + at + 0.01);
        gain.gain.setValueAtTime(tune.gain, t0 + at + len - 0.02);
        gain.gain.linearRampToValueAtTime(0, t0 + at + len);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t0 + at);
        osc.stop(t0 + at + len + 0.02);
      }
      root.dataset.lastSound = outcome;
      return true;
    }

    // Browsers start audio only after a gesture unless the kiosk allows it
    // (chromium --autoplay-policy=no-user-gesture-required): try now, and again on
    // the first touch or key.
    for (const ev of ["pointerdown", "keydown", "touchstart"]) {
      window.addEventListener(ev, unlock, { passive: true });
    }
    button.addEventListener("click", unlock);
    unlock();
    return { play };
  })();

  // -- rendering the view --------------------------------------------------------------
  let view = null;
  let lastFeedbackKey = null;

  const feedbackKey = (fb) => (fb ? `${fb.at}|${fb.outcome}|${fb.code}|${fb.message}` : null);

  // The big signal: alarm, then a refusal, then a device problem, then the outcome.
  function signalFor(v) {
    const fb = v.feedback;
    const dev = v.devices;
    if (v.state === "alarm") {
      return { tone: "alarm", icon: "stop", word: "Alarm", reason: v.alarm ? v.alarm.message : "" };
    }
    if (fb && fb.outcome === "refused") {
      return { tone: "warn", icon: "warn", word: "Refused", reason: fb.message };
    }
    if (v.order && v.order.blocked) {
      return { tone: "warn", icon: "warn", word: "Check", reason: v.order.blocked };
    }
    if (!dev.printer_ready && (v.state === "packing" || v.state === "idle")) {
      return { tone: "warn", icon: "warn", word: "Printer", reason: dev.printer_problem || `Printer ${dev.printer}` };
    }
    if (dev.scanner === "gone") {
      return { tone: "warn", icon: "unplugged", word: "Scanner", reason: "Scanner unplugged — plug it in" };
    }
    if (v.state === "done") {
      return { tone: "ok", icon: "check", word: "Done", reason: fb ? fb.message : "Order shipped" };
    }
    if (fb && fb.outcome === "ok") {
      return { tone: "ok", icon: "check", word: "OK", reason: fb.message };
    }
    if (v.state === "packing") {
      return { tone: "neutral", icon: "scan", word: "Packing", reason: fb && fb.message ? fb.message : "" };
    }
    if (!v.operator) {
      return { tone: "neutral", icon: "info", word: "Log in", reason: "Nobody is logged in at this bench" };
    }
    return { tone: "neutral", icon: "scan", word: "Ready", reason: fb && fb.message ? fb.message : "" };
  }

  function renderSignal(v) {
    const s = signalFor(v);
    root.dataset.tone = s.tone;
    const icon = $("signal-icon");
    if (icon.dataset.icon !== s.icon) {
      icon.innerHTML = SVG[s.icon];
      icon.dataset.icon = s.icon;
    }
    setText("signal-word", s.word);
    setText("signal-reason", s.reason);
  }

  function renderDeadlines(container, order) {
    container.replaceChildren();
    for (const [key, label] of [["pack_by", "Pack by"], ["ship_by", "Ship by"]]) {
      if (!order[key]) continue;
      const el = document.createElement("span");
      el.className = "deadline";
      el.dataset.deadline = order[key];
      el.dataset.label = label;
      container.appendChild(el);
    }
    tickDeadlines();
  }

  function renderOrder(v) {
    const o = v.order;
    $("order").hidden = !o;
    $("return").hidden = !v.returning;
    $("no-order").hidden = Boolean(o || v.returning);
    if (!o && !v.returning) {
      setText("no-order", v.last_order_no ? `No order in progress — last: ${v.last_order_no}` : "No order in progress");
    }
    if (v.returning) {
      const r = v.returning;
      setText("return-of", r.order_no ? `order ${r.order_no} (${r.tracking_no})` : "scan the returned parcel");
      const list = $("return-items");
      list.replaceChildren();
      for (const [sku, qty] of Object.entries(r.items)) {
        const li = document.createElement("li");
        li.textContent = `${sku} × ${qty}`;
        list.appendChild(li);
      }
    }
    if (!o) return;
    setText("order-no", o.order_no);
    setText("order-carrier", [o.carrier, o.service].filter(Boolean).join(" · "));
    setText("parcel-of", `Parcel ${o.parcel_no} of ${o.parcel_count}`);
    setText("progress", `${o.items_verified} of ${o.items_total} items`);
    const qc = $("qc");
    qc.hidden = o.qc === "not chosen";
    qc.textContent = o.qc === "needed" ? "QC check needed" : "QC passed";
    qc.className = o.qc === "needed" ? "pill qc-needed" : "pill";

    const notice = $("notice");
    notice.hidden = !v.notice;
    if (v.notice && notice.dataset.text !== v.notice) {
      notice.dataset.text = v.notice;
      notice.replaceChildren(glyph("restart"), document.createTextNode(v.notice));
    }

    const key = `${o.order_no}|${o.pack_by}|${o.ship_by}`;
    const deadlines = $("deadlines");
    if (deadlines.dataset.key !== key) {
      deadlines.dataset.key = key;
      renderDeadlines(deadlines, o);
    }

    const body = $("lines").tBodies[0];
    body.replaceChildren();
    for (const line of o.lines) {
      const tr = document.createElement("tr");
      tr.dataset.sku = line.sku;
      tr.dataset.open = String(line.open);
      if (line.open === 0) tr.className = "done";
      const item = document.createElement("td");
      item.append(line.name || line.sku);
      const sku = document.createElement("span");
      sku.className = "sku";
      sku.textContent = line.sku;
      item.appendChild(sku);
      const code = document.createElement("td");
      code.className = "code";
      code.textContent = line.code;
      const verified = document.createElement("td");
      verified.className = "num verified";
      verified.textContent = `${line.verified} / ${line.qty}`;
      const open = document.createElement("td");
      open.className = "num open";
      open.textContent = line.open === 0 ? "done" : `${line.open} open`;
      tr.append(item, code, verified, open);
      body.appendChild(tr);
    }

    const parcels = $("parcels");
    parcels.replaceChildren();
    for (const p of o.parcels) {
      const li = document.createElement("li");
      if (p.parcel_no === o.parcel_no) li.className = "current";
      li.dataset.parcel = String(p.parcel_no);
      li.textContent = `Parcel ${p.parcel_no}: ${p.state}${p.items ? ` · ${plural(p.items, "item")}` : ""}${p.error ? ` — ${p.error}` : ""}`;
      parcels.appendChild(li);
    }
  }

  function fact(id, text, cls) {
    setText(id, text);
    const row = $(`${id}-fact`);
    row.classList.toggle("bad", cls === "bad");
    row.classList.toggle("busy", cls === "busy");
  }

  function renderDevices(v) {
    const d = v.devices;
    if (d.printing) {
      fact("printer", d.printing.charAt(0).toUpperCase() + d.printing.slice(1), "busy");
    } else if (d.printer_ready) {
      fact("printer", `Ready${d.printer_model ? ` · ${d.printer_model}` : ""}`, "");
    } else {
      fact("printer", d.printer_problem || `${d.printer}${d.printer_detail ? `: ${d.printer_detail}` : ""}`, "bad");
    }
    const left = d.labels_left;
    fact("labels", `${d.label_size}${left === null || left === undefined ? "" : ` · ${left} left`}`, left !== null && left !== undefined && left < 20 ? "bad" : "");
    const scanner = { ready: "Ready", gone: "Unplugged — plug it in", opening: "Starting…", closed: "Closed" }[d.scanner] || d.scanner;
    fact("scanner", d.scanner_detail && d.scanner !== "ready" ? `${scanner} (${d.scanner_detail})` : scanner, d.scanner === "ready" ? "" : "bad");
  }

  function renderSync(v) {
    const s = v.sync;
    renderSyncAge(s);
    const link = s.link || "starting";
    root.dataset.link = link;
    fact("broker", linkWords(s), link === "connected" ? "" : link === "starting" ? "busy" : "bad");
    const skew = s.clock_skew_s;
    skewMs = skew === null || skew === undefined ? 0 : skew * 1000;
    // Only a clock worth a look is shown (central flags times beyond its tolerance).
    $("skew-fact").hidden = !s.clock_skew_large;
    if (s.clock_skew_large) {
      fact("skew", `This bench is ${duration(skew)} ${skew > 0 ? "ahead of" : "behind"} central`, "bad");
    }
    const conflict = $("conflict");
    conflict.hidden = !s.name_conflict;
    if (s.name_conflict && conflict.dataset.text !== s.name_conflict) {
      conflict.dataset.text = s.name_conflict;
      conflict.replaceChildren(glyph("warn"), document.createTextNode(s.name_conflict));
    }
  }

  const capital = (words) => words.charAt(0).toUpperCase() + words.slice(1);

  // The link to central in the packer's words; the bench keeps working whatever it says.
  function linkWords(s) {
    switch (s.link) {
      case "connected":
        return "Connected to central";
      case "starting":
        return "Connecting to central…";
      case "name_conflict":
        return capital(s.name_conflict || "another bench uses this bench's name");
      case "stopping":
        return "The bench is stopping";
      default: // unreachable, central_silent: the uplink's words say why
        return `${capital(s.broker)} — keep packing, records wait here`;
    }
  }

  function renderSyncAge(s) {
    if (!s.backlog) {
      fact("sync", "All records sent to central", "");
      return;
    }
    const records = plural(s.backlog, "record");
    let text = `${records} not yet at central`;
    if (s.oldest_unsent_at) {
      const age = (benchNow() - s.oldest_unsent_at * 1000) / 1000;
      text += ` · oldest ${duration(age)} old`;
    }
    fact("sync", text, s.backlog > 0 && s.oldest_unsent_at && benchNow() / 1000 - s.oldest_unsent_at > 300 ? "bad" : "");
  }

  function renderQueue(v) {
    const list = $("next-to-pack");
    list.replaceChildren();
    for (const n of v.next_to_pack) {
      const li = document.createElement("li");
      li.dataset.order = n.order_no;
      const name = document.createElement("strong");
      name.textContent = n.order_no;
      const what = document.createElement("span");
      what.className = "muted";
      what.textContent = ` · ${plural(n.items, "item")}${n.parcels > 1 ? ` · ${n.parcels} parcels` : ""} `;
      li.append(name, what);
      const due = n.pack_by || n.ship_by;
      if (due) {
        const when = document.createElement("span");
        when.className = "when";
        when.dataset.deadline = due;
        when.dataset.label = n.pack_by ? "pack by" : "ship by";
        li.appendChild(when);
      }
      list.appendChild(li);
    }
    $("queue-empty").hidden = v.next_to_pack.length > 0;
    tickDeadlines();
  }

  // Every second: the countdowns and the age of the oldest unsent record.
  function tickDeadlines() {
    for (const el of document.querySelectorAll("[data-deadline]")) {
      const left = timeLeft(el.dataset.deadline);
      const at = clockTime(Date.parse(el.dataset.deadline));
      const text = `${el.dataset.label} ${at} · ${left.text}`;
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("overdue", left.cls === "overdue");
      el.classList.toggle("soon", left.cls === "soon");
    }
    if (view) renderSyncAge(view.sync);
  }

  function render(v) {
    offsetMs = v.at * 1000 - Date.now();
    const first = view === null;
    view = v;
    root.dataset.state = v.state;
    root.dataset.version = String(v.version);
    root.dataset.outcome = v.feedback ? v.feedback.outcome : "";
    setText("station", `${v.station} · ${v.site}`);
    setText("operator", v.operator ? `Packer ${v.operator}` : "Nobody logged in");
    setText("next-step", v.next_step);
    renderSignal(v);
    renderOrder(v);
    renderDevices(v);
    renderSync(v);
    renderQueue(v);
    document.title = `${v.state} · ${v.station}`;
    const key = feedbackKey(v.feedback);
    if (key !== lastFeedbackKey) {
      // A new outcome sounds; the one already on screen when the page opened does not.
      if (!first && v.feedback && v.feedback.message) Sound.play(v.feedback.outcome);
      lastFeedbackKey = key;
    }
  }

  // -- the connection: live over SSE, said when lost, recovered by itself ---------------
  let source = null;
  let lastHeard = 0;
  let retry = null;

  function connection(state) {
    root.dataset.connection = state;
    $("lost").hidden = state !== "lost";
    setText("connection", { live: "Live", lost: "Not connected", connecting: "Connecting…" }[state]);
    if (state === "lost" && !$("lost").querySelector("svg")) {
      $("lost").querySelector(".icon").innerHTML = SVG.unplugged;
    }
  }

  function connect() {
    if (retry !== null) {
      clearTimeout(retry);
      retry = null;
    }
    if (source) source.close();
    source = new EventSource("/events");
    lastHeard = Date.now();
    source.addEventListener("view", (e) => {
      lastHeard = Date.now();
      connection("live");
      try {
        render(JSON.parse(e.data));
      } catch (err) {
        console.error("cannot show the view", err);
      }
    });
    source.addEventListener("ping", () => {
      lastHeard = Date.now();
    });
    source.onerror = () => {
      connection("lost");
      // The browser retries by itself while CONNECTING; once CLOSED it is up to us.
      if (source.readyState === EventSource.CLOSED && retry === null) {
        retry = setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  setInterval(() => {
    tickDeadlines();
    // A stream that went quiet (no view, no keep-alive) is as good as lost.
    if (Date.now() - lastHeard > LOST_AFTER_MS) {
      connection("lost");
      connect();
    }
  }, 1000);

  connection("connecting");
  connect();
})();
