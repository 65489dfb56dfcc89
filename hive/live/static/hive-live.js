/* hive-live.js: the page's side of hive.live (the protocol: hive/live/protocol.py). */
(() => {
  "use strict";
  const script = document.currentScript;
  const base = new URL(script.dataset.url + "/", location.href);
  const page = script.dataset.page, token = script.dataset.token;
  const root = document.documentElement;
  const classes = Object.assign(Object.create(null), (window.hive && window.hive.widgets) || {});
  const calls = new Map(); // call id -> {resolve, reject, sent}
  const queue = []; // messages waiting for a connection
  let widgets = new Map(); // element id -> Widget
  let socket = null, ready = false, nextCall = 1, failures = 0;

  function setState(state) {
    root.dataset.hiveState = state;
    document.dispatchEvent(new CustomEvent("hive:" + state));
  }

  class Widget {
    constructor(node) { this.node = node; this.id = node.dataset.hiveLive; }
    get methods() { return classes[this.node.dataset.hiveClass] || {}; }
    callRemote(name, ...args) { return call(this.id, name, args, {}); }
  }

  // The widgets as the DOM has them: [[id, parent id], ...] and the ids that left.
  function scan() {
    const fresh = new Map(), list = [];
    for (const node of document.querySelectorAll("[data-hive-live]")) {
      const id = node.dataset.hiveLive;
      const up = node.parentElement && node.parentElement.closest("[data-hive-live]");
      list.push([id, up ? up.dataset.hiveLive : null]);
      let widget = widgets.get(id);
      if (!widget || widget.node !== node) {
        widget = new Widget(node);
        const init = widget.methods.init;
        if (init) setTimeout(() => init.call(widget));
      }
      fresh.set(id, widget);
    }
    const gone = [...widgets.keys()].filter((id) => !fresh.has(id));
    widgets = fresh;
    return { list, gone };
  }

  function send(message) {
    if (socket && (ready || message.t === "hello")) {
      socket.send(JSON.stringify(message));
      if (message.t === "call" && calls.has(message.id)) calls.get(message.id).sent = true;
    } else if (queue.length < 100) {
      queue.push(message);
    } else if (message.t === "call") {
      settle(message.id, { name: "ConnectionError", message: "not connected" });
    }
  }

  function call(el, m, a, k) {
    return new Promise((resolve, reject) => {
      const id = nextCall++;
      calls.set(id, { resolve, reject, sent: false });
      send({ t: "call", id, el, m, a, k });
    });
  }

  function settle(id, error, value) {
    const pending = calls.get(id);
    if (!pending) return;
    calls.delete(id);
    if (!error) return pending.resolve(value);
    const e = new Error(error.message);
    e.name = error.name;
    pending.reject(e);
  }

  function receive(msg) {
    if (msg.t === "ready") {
      ready = true;
      failures = 0;
      setState("connected");
      queue.splice(0).forEach(send);
    } else if (msg.t === "html") {
      apply(msg);
    } else if (msg.t === "result") {
      settle(msg.id, null, msg.v);
    } else if (msg.t === "error") {
      settle(msg.id, msg.e || { name: "Error", message: "" });
    } else if (msg.t === "call") {
      answer(msg);
    } else if (msg.t === "reload") {
      reload();
    }
  }

  function answer(msg) {
    const widget = widgets.get(msg.el);
    Promise.resolve()
      .then(() => {
        const fn = widget && widget.methods[msg.m];
        if (typeof fn !== "function") throw new Error(`no function ${msg.m} for element ${msg.el}`);
        return fn.apply(widget, msg.a || []);
      })
      .then(
        (v) => send({ t: "result", id: msg.id, v: v === undefined ? null : v }),
        (e) => send({ t: "error", id: msg.id, e: { name: e.name || "Error", message: String(e.message || e) } })
      );
  }

  function partOf(node, name) {
    for (const n of node.querySelectorAll("[data-hive-part]")) {
      if (n.dataset.hivePart === name && n.closest("[data-hive-live]") === node) return n;
    }
    return null;
  }

  function apply(msg) {
    const widget = widgets.get(msg.el);
    if (!widget) return;
    const target = msg.part == null ? widget.node : partOf(widget.node, msg.part);
    if (!target) return;
    const holder = document.createElement("template");
    holder.innerHTML = msg.html;
    const fresh = holder.content.firstElementChild;
    if (!fresh) return;
    morph(target, fresh);
    const { gone } = scan();
    if (gone.length) send({ t: "gone", els: gone });
    const updated = new CustomEvent("hive:updated", { bubbles: true });
    (target.isConnected ? target : widget.node).dispatchEvent(updated);
  }

  // Make `from` look like `to`, keeping the nodes that stay (focus, scroll, typed text).
  function morph(from, to) {
    if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) return from.replaceWith(to);
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    for (const { name } of [...from.attributes]) if (!to.hasAttribute(name)) from.removeAttribute(name);
    for (const { name, value } of to.attributes) if (from.getAttribute(name) !== value) from.setAttribute(name, value);
    const field = /^(INPUT|TEXTAREA|SELECT)$/.test(from.nodeName);
    if (field && from === document.activeElement) return;
    morphChildren(from, to);
    if (field) {
      from.value = to.value;
      if (from.nodeName === "INPUT") from.checked = to.checked;
    }
  }

  const key = (n) => (n.nodeType === 1 ? n.id || n.getAttribute("data-hive-key") : null);

  function morphChildren(from, to) {
    const keyed = new Map();
    for (const c of from.childNodes) if (key(c)) keyed.set(key(c), c);
    let cur = from.firstChild;
    for (const next of [...to.childNodes]) {
      const k = key(next);
      let match = k ? keyed.get(k) : null;
      if (match) {
        keyed.delete(k);
        if (match !== cur) from.insertBefore(match, cur);
      } else if (!k && cur && !key(cur)) {
        match = cur;
      }
      if (match) {
        cur = match.nextSibling;
        morph(match, next);
      } else {
        from.insertBefore(next, cur);
      }
    }
    while (cur) {
      const n = cur.nextSibling;
      from.removeChild(cur);
      cur = n;
    }
  }

  function connect() {
    setState("connecting");
    const url = new URL(base.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let opened = false;
    const ws = (socket = new WebSocket(url.href, ["hive-live.1", `hive-page.${page}.${token}`]));
    ws.onopen = () => {
      opened = true;
      send({ t: "hello", els: scan().list });
    };
    ws.onmessage = (event) => [].concat(JSON.parse(event.data)).forEach(receive);
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      ready = false;
      for (const [id, pending] of calls) {
        if (pending.sent) settle(id, { name: "ConnectionError", message: "connection lost" });
      }
      setState("offline");
      if (event.code === 4401) return reload();
      if (opened) retry(); else check();
    };
  }

  function retry() {
    failures++;
    const delay = Math.min(10000, 250 * 2 ** Math.min(failures - 1, 6));
    setTimeout(connect, delay * (0.5 + Math.random() / 2));
  }

  // Refused before opening: is the page still there, or is it to be loaded anew?
  function check() {
    fetch(new URL("check", base), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ page, token }),
      credentials: "same-origin",
    })
      .then((r) => (r.ok ? r.json() : { live: true }))
      .then((answer) => (answer.live === false ? reload() : retry()), retry);
  }

  function reload() {
    const last = +sessionStorage.getItem("hive-live-reload") || 0;
    if (Date.now() - last < 10000) return retry();
    sessionStorage.setItem("hive-live-reload", String(Date.now()));
    location.reload();
  }

  function run(node, name, args, kwargs) {
    const owner = node.closest("[data-hive-live]");
    if (!owner) return Promise.resolve(false);
    node.setAttribute("data-hive-busy", "");
    const done = (kind, detail, ok) => {
      node.removeAttribute("data-hive-busy");
      node.dispatchEvent(new CustomEvent("hive:" + kind, { bubbles: true, detail }));
      return ok;
    };
    return call(owner.dataset.hiveLive, name, args, kwargs).then(
      (value) => done("result", value, true),
      (error) => { console.error(error); return done("error", error, false); }
    );
  }

  function argsOf(node) {
    const raw = node.dataset.hiveArgs;
    if (raw === undefined) return [];
    const value = JSON.parse(raw);
    return Array.isArray(value) ? value : [value];
  }

  document.addEventListener("click", (event) => {
    const node = event.target.closest && event.target.closest("[data-hive-click]");
    if (!node) return;
    event.preventDefault();
    run(node, node.dataset.hiveClick, argsOf(node), {});
  });

  document.addEventListener("submit", (event) => {
    const form = event.target.closest && event.target.closest("form[data-hive-submit]");
    if (!form) return;
    event.preventDefault();
    const fields = {};
    for (const [name, value] of new FormData(form)) if (typeof value === "string") fields[name] = value;
    run(form, form.dataset.hiveSubmit, [], fields).then((ok) => ok && form.reset());
  });

  window.hive = {
    widgets: classes,
    widget(name, methods) {
      classes[name] = methods;
      for (const widget of widgets.values()) {
        if (widget.node.dataset.hiveClass === name && methods.init) methods.init.call(widget);
      }
    },
    callRemote(target, name, ...args) {
      const node = typeof target === "string"
        ? document.querySelector(`[data-hive-live="${CSS.escape(target)}"]`)
        : target && target.closest("[data-hive-live]");
      if (!node) return Promise.reject(new Error("no live element"));
      return call(node.dataset.hiveLive, name, args, {});
    },
  };

  scan();
  connect();
})();
