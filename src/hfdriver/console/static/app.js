// hfdriver console: chat, models and system views over the server's own API (no other origin).
"use strict";

const $ = (selector) => document.querySelector(selector);
const KEY = "hfdriver.console.key"; // sessionStorage: this tab's session only
const CONVERSATION = "hfdriver.console.conversation"; // localStorage: kept across reloads

// ---------------------------------------------------------------- the API
class ApiError extends Error {}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, method: options.method || "POST", body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("#key-form").hidden = false;
    $("#api-key").focus();
    throw new ApiError("this server needs its API key: enter it above");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(message);
  }
  return response;
}

async function getJSON(path) {
  return (await api(path)).json();
}

// Server-Sent Events from a fetch response: yields each `data:` payload (a string).
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
      if (data.length) yield data.join("\n");
    }
  }
}

function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function bytes(n) {
  if (n === null || n === undefined) return "unknown";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// ---------------------------------------------------------------- tabs
const views = { chat: null, models: loadModels, system: loadSystem };
let current = "chat";

function openView(name) {
  current = name;
  for (const view of Object.keys(views)) {
    $(`#tab-${view}`).setAttribute("aria-selected", String(view === name));
    $(`#view-${view}`).hidden = view !== name;
  }
  showError(null);
  if (views[name]) views[name]().catch(showError);
}

// ---------------------------------------------------------------- chat
let conversation = [];
let running = null; // the AbortController of the answer being streamed

function saveConversation() {
  localStorage.setItem(CONVERSATION, JSON.stringify(conversation));
}

function meta(turn) {
  const parts = [];
  if (turn.usage) parts.push(`${turn.usage.prompt_tokens} tokens in, ${turn.usage.completion_tokens} out`);
  if (turn.cost) parts.push(`cost ${turn.cost.total.toFixed(6)} ${turn.cost.currency}`);
  else if (turn.usage) parts.push("cost unknown");
  if (turn.finish && turn.finish !== "stop") parts.push(`finish: ${turn.finish}`);
  if (turn.stopped) parts.push("stopped");
  if (turn.error) parts.push(`error: ${turn.error}`);
  return parts.join(" · ");
}

function renderTurn(turn) {
  const item = el("li", { class: `turn ${turn.role}` },
    el("span", { class: "role", text: turn.role === "user" ? "You" : "Assistant" }),
    el("div", { class: "content", text: turn.content }));
  if (turn.role === "assistant") item.append(el("div", { class: "meta", text: meta(turn) }));
  return item;
}

function renderConversation() {
  const list = $("#conversation");
  list.replaceChildren(...conversation.map(renderTurn));
  list.scrollTop = list.scrollHeight;
}

function setStreaming(on) {
  $("#send").hidden = on;
  $("#stop").hidden = !on;
  $("#message").disabled = false;
}

async function send() {
  const text = $("#message").value.trim();
  if (!text || running) return;
  showError(null);
  $("#message").value = "";
  conversation.push({ role: "user", content: text });
  const turn = { role: "assistant", content: "" };
  conversation.push(turn);
  saveConversation();
  renderConversation();
  const messages = [];
  const system = $("#system-prompt").value.trim();
  if (system) messages.push({ role: "system", content: system });
  for (const t of conversation.slice(0, -1)) if (!t.error || t.content) messages.push({ role: t.role, content: t.content });
  const body = { model: $("#model").value || undefined, messages, stream: true, stream_options: { include_usage: true } };
  const temperature = $("#temperature").value, maxTokens = $("#max-tokens").value;
  if (temperature !== "") body.temperature = Number(temperature);
  if (maxTokens !== "") body.max_tokens = Number(maxTokens);
  running = new AbortController();
  setStreaming(true);
  const item = $("#conversation").lastElementChild;
  try {
    const response = await api("/v1/chat/completions", { json: body, signal: running.signal });
    for await (const data of events(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(chunk.error.message || String(chunk.error));
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.delta && choice.delta.content) {
        turn.content += choice.delta.content;
        item.querySelector(".content").textContent = turn.content;
      }
      if (choice && choice.finish_reason) turn.finish = choice.finish_reason;
      if (chunk.usage) turn.usage = chunk.usage;
      if (chunk.cost) turn.cost = chunk.cost;
    }
  } catch (error) {
    if (error.name === "AbortError") turn.stopped = true;
    else { turn.error = error.message; showError(error); }
  } finally {
    running = null;
    setStreaming(false);
    saveConversation();
    renderConversation();
    $("#message").focus();
  }
}

async function loadModelPicker() {
  const models = await getJSON("/v1/models");
  $("#model").replaceChildren(...models.data.map((m) => el("option", { value: m.id, text: m.id })));
}

// ---------------------------------------------------------------- models
async function loadInstalled() {
  const data = await getJSON("/api/local/models");
  const rows = data.models.map((m) => el("tr", {},
    el("td", { text: m.repo_id ? `${m.repo_id} (${m.key})` : m.key }),
    el("td", { text: m.quantization || "-" }),
    el("td", { text: bytes(m.size) }),
    el("td", { class: "path", text: m.path }),
    el("td", {}, el("button", { type: "button", "aria-label": `Remove ${m.key}`, text: "Remove",
      onclick: () => removeModel(m.key).catch(showError) }))));
  if (data.embedded) {
    rows.push(el("tr", {}, el("td", { text: `embedded: ${data.embedded.description}` }), el("td", { text: "Q4_K_M" }),
      el("td", { text: bytes(data.embedded.size) }), el("td", { class: "path", text: data.embedded.path }), el("td")));
  }
  $("#installed tbody").replaceChildren(...rows);
}

async function removeModel(key) {
  await api("/api/local/remove", { json: { key } });
  await loadInstalled();
}

async function search(query) {
  const data = await getJSON(`/api/hub/search?q=${encodeURIComponent(query)}`);
  const items = data.models.map((m) => {
    const files = el("ul", { class: "files" });
    return el("li", {},
      el("strong", { text: m.id }),
      el("span", { class: "stats", text: ` ${m.downloads.toLocaleString()} downloads · ${m.likes.toLocaleString()} likes ` }),
      el("button", { type: "button", text: "Show files", onclick: () => showFiles(m.id, files).catch(showError) }),
      files);
  });
  $("#results").replaceChildren(...(items.length ? items : [el("li", { text: "no GGUF repositories match" })]));
}

async function showFiles(repo, list) {
  const data = await getJSON(`/api/hub/gguf?repo=${encodeURIComponent(repo)}`);
  list.replaceChildren(...data.quantizations.map((q) => el("li", {},
    el("span", { text: `${q.quantization || q.file} · ${bytes(q.size)} ` }),
    el("button", { type: "button", text: "Pull", "aria-label": `Pull ${repo} ${q.quantization || q.file}`,
      onclick: () => pull(repo, q).catch(showError) }))));
}

async function pull(repo, q) {
  const body = q.quantization ? { repo, quantization: q.quantization } : { repo, file: q.file };
  const started = await (await api("/api/local/pull", { json: body })).json();
  follow(started).catch(showError);
}

const following = new Set();

async function follow(state) {
  if (following.has(state.id)) return;
  following.add(state.id);
  const bar = el("progress", { max: "100", value: String(state.percent || 0), "aria-label": `Pulling ${state.id}` });
  const label = el("span", { class: "pull-state", text: "starting" });
  const cancel = el("button", { type: "button", text: "Cancel", onclick: () =>
    api(`/api/local/pulls/${encodeURIComponent(state.id)}/cancel`, { json: {} }).catch(showError) });
  const row = el("div", { class: "pull" }, el("span", { text: `${state.id} ` }), bar, label, cancel);
  $("#pulls").append(row);
  try {
    const response = await api(`/api/local/pulls/${encodeURIComponent(state.id)}/events`);
    for await (const data of events(response)) {
      const event = JSON.parse(data);
      bar.value = event.percent;
      bar.setAttribute("aria-valuenow", String(event.percent));
      label.textContent = event.status === "running"
        ? `${event.percent}% of ${bytes(event.total)}` : event.status + (event.error ? `: ${event.error}` : "");
      if (event.status === "failed") showError(new Error(event.error));
      if (event.status !== "running") {
        cancel.remove();
        if (event.status === "done") await loadInstalled();
      }
    }
  } finally {
    following.delete(state.id);
  }
}

async function loadCatalogue() {
  const data = await getJSON("/api/router/models");
  const price = (v) => (v === null || v === undefined ? "?" : v);
  $("#catalogue tbody").replaceChildren(...data.models.map((m) => el("tr", {},
    el("td", { text: m.id }),
    el("td", { text: m.context_window ? m.context_window.toLocaleString() : "-" }),
    el("td", { text: m.providers.map((p) => `${p.provider} (${price(p.input)} / ${price(p.output)})`).join(", ") }))));
  $("#catalogue").hidden = false;
}

async function loadModels() {
  await loadInstalled();
  const running = await getJSON("/api/local/pulls");
  for (const state of running.pulls) if (state.status === "running") follow(state).catch(showError);
}

// ---------------------------------------------------------------- system
async function loadSystem() {
  const info = await getJSON("/api/system");
  const rows = [
    ["hfdriver", `${info.hfdriver.version} (Python ${info.hfdriver.python})`],
    ["Operating system", info.os],
    ["CPU", `${info.cpu.model}, ${info.cpu.cores} cores (${info.cpu.usable_cores} usable)`],
    ["RAM", `${bytes(info.memory.total_bytes)} total, ${bytes(info.memory.available_bytes)} available`],
    ["Accelerators", info.accelerators.length
      ? info.accelerators.map((a) => `${a.kind}: ${a.name}${a.memory_bytes ? " " + bytes(a.memory_bytes) : ""}`).join("; ")
      : "none detected"],
    ["llama.cpp", info.llama_cpp.installed
      ? `llama-cpp-python ${info.llama_cpp.version}, built with ${info.llama_cpp.backends.join(", ")}` +
        (info.llama_cpp.gpu_offload ? " (GPU offload)" : " (no GPU offload)")
      : `not available (${info.llama_cpp.note})`],
  ];
  for (const place of info.storage) {
    rows.push([place.name, `${place.path} — ${place.exists ? bytes(place.bytes) + " on disk" : "not created yet"}, ${bytes(place.free_bytes)} free`]);
  }
  for (const [name, value] of Object.entries(info.config || {})) rows.push([`config: ${name}`, String(value)]);
  $("#system").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]));
}

// ---------------------------------------------------------------- start
document.addEventListener("DOMContentLoaded", () => {
  for (const view of Object.keys(views)) $(`#tab-${view}`).addEventListener("click", () => openView(view));
  $("#composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("#message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
  });
  $("#stop").addEventListener("click", () => { if (running) running.abort(); });
  $("#clear").addEventListener("click", () => { conversation = []; saveConversation(); renderConversation(); });
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("#search").value).catch(showError);
  });
  $("#load-catalogue").addEventListener("click", () => loadCatalogue().catch(showError));
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("#api-key").value.trim());
    $("#key-form").hidden = true;
    showError(null);
    loadModelPicker().catch(showError);
    openView(current);
  });
  try { conversation = JSON.parse(localStorage.getItem(CONVERSATION) || "[]"); } catch (_) { conversation = []; }
  renderConversation();
  loadModelPicker().catch(showError);
});
