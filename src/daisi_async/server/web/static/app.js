// The Daisi runtime's web page: the token box, running endpoints, live logs and runs.
// Everything that comes from the server is put on the page as text (textContent),
// never as HTML. API calls carry the token saved in this browser in the
// Authorization header; the daisi_token cookie only lets the server render GET pages.
"use strict";

const API = "/pebble-api";
const TOKEN_KEY = "daisi-token";
// Cookies are shared by every port of a host: one name per port keeps two runtimes apart.
const COOKIE = location.port ? `daisi_token_${location.port}` : "daisi_token";
const TERMINAL = new Set(["FINISHED", "FAILED", "CANCELLED"]);

function savedToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  const token = savedToken();
  if (token) headers.Authorization = "token " + token;
  return headers;
}

function cookieToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

function setCookie(token) {
  const value = token ? encodeURIComponent(token) : "";
  const age = token ? 31536000 : 0;
  document.cookie = `${COOKIE}=${value}; path=/; max-age=${age}; SameSite=Strict`;
}

function setupToken() {
  const form = document.getElementById("token-form");
  // Keep the cookie equal to the saved token (pages rendered by the server read it).
  if (cookieToken() !== savedToken()) {
    setCookie(savedToken());
    if (!sessionStorage.getItem("daisi-synced")) {
      sessionStorage.setItem("daisi-synced", "1");
      location.reload();
      return;
    }
  }
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = document.getElementById("token-input").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    setCookie(token);
    location.reload();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    setCookie("");
    location.reload();
  });
}

// Server-sent events read with fetch (EventSource can't send an Authorization header).
async function readEvents(url, onEvent, onOpen) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await errorText(response));
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { type: "message", data: "" };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.type = text;
        else if (field === "data") event.data += text;
        else if (field === "id") event.id = text;
      }
      if (event.data) onEvent(event.type, JSON.parse(event.data));
    }
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    const error = body.error || {};
    return `${response.status}: ${error.message || JSON.stringify(body)}`;
  } catch (err) {
    return `${response.status} ${response.statusText}`;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Follow one execution's events from `after` until its terminal status (reconnecting).
async function followExecution(eid, after, handlers) {
  let seq = after;
  let status = null;
  for (let attempt = 0; attempt < 100 && !TERMINAL.has(status); attempt++) {
    try {
      await readEvents(`${API}/v1/executions/${encodeURIComponent(eid)}/events?after=${seq}`, (type, data) => {
        seq = Math.max(seq, data.seq || 0);
        if (type === "log") handlers.log(data);
        else if (type === "status") {
          status = data.status;
          handlers.status(status);
        }
      });
    } catch (err) {
      handlers.problem(String(err.message || err));
    }
    if (!TERMINAL.has(status)) await sleep(1000);
  }
  const response = await fetch(`${API}/v1/executions/${encodeURIComponent(eid)}?result=1`, {
    headers: authHeaders(),
  });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

function appendLine(pre, data) {
  const span = document.createElement("span");
  span.className = data.stream === "stderr" ? "line stderr" : "line";
  span.textContent = data.line + "\n";
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.appendChild(span);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function setStatus(element, status) {
  element.textContent = status;
  element.className = "status status-" + status;
}

function errorTraceback(error) {
  if (!error) return "";
  const tb = error.traceback || "";
  return tb.trim() ? tb : `${error.type}: ${error.message}`;
}

// Show an execution's end: its result (JSON, or the size of a dill payload) or error.
function showEnd(execution, resultBox, errorBox) {
  resultBox.textContent = "";
  const result = execution.result;
  if (result && result.encoding === "json") {
    const pre = document.createElement("pre");
    pre.className = "result";
    pre.textContent = JSON.stringify(result.value, null, 2);
    resultBox.replaceWith(pre);
    return pre;
  }
  if (result) {
    resultBox.textContent = `A Python object the server does not open: ${result.size} bytes of dill. `;
    const link = document.createElement("a");
    link.href = `/executions/${encodeURIComponent(execution.id)}/download`;
    link.textContent = "Download";
    resultBox.appendChild(link);
  } else if (execution.status !== "FINISHED") {
    resultBox.textContent = "No result.";
  }
  if (execution.error && errorBox) {
    errorBox.hidden = false;
    errorBox.querySelector("pre").textContent = errorTraceback(execution.error);
  }
  return resultBox;
}

// A Daisi's page: each endpoint's form runs it and shows logs and result.
function readArguments(form) {
  const args = {};
  for (const input of form.querySelectorAll("input[name]")) {
    const raw = input.value;
    if (raw.trim() === "") continue;
    let value;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      value = raw;
    }
    if (input.dataset.kind === "VAR_KEYWORD") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new Error(`**${input.name} must be a JSON object`);
      }
      for (const [key, item] of Object.entries(value)) args[key] = { value: item };
    } else {
      args[input.name] = { value };
    }
  }
  return args;
}

function setupForms() {
  for (const form of document.querySelectorAll("form.run-form")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      runForm(form).catch((err) => console.error(err));
    });
  }
}

async function runForm(form) {
  const out = form.nextElementSibling;
  const link = out.querySelector(".run-link");
  const status = out.querySelector(".status");
  const logs = out.querySelector(".run-logs");
  const errorPre = out.querySelector(".run-error");
  let resultPre = out.querySelector(".run-result");
  out.hidden = false;
  logs.textContent = "";
  errorPre.hidden = true;
  resultPre.hidden = true;
  link.textContent = "";
  link.removeAttribute("href");
  const fail = (message) => {
    setStatus(status, "ERROR");
    errorPre.hidden = false;
    errorPre.textContent = message;
  };
  let args;
  try {
    args = readArguments(form);
  } catch (err) {
    fail(err.message);
    return;
  }
  setStatus(status, "SUBMITTING");
  const response = await fetch(`${API}/v1/daisies/${encodeURIComponent(form.dataset.daisi)}/executions`, {
    method: "POST",
    headers: authHeaders({ "content-type": "application/json" }),
    body: JSON.stringify({ endpoint: form.dataset.endpoint, arguments: args }),
  });
  if (!response.ok) {
    fail(await errorText(response));
    return;
  }
  const execution = await response.json();
  link.textContent = execution.id.slice(0, 8);
  link.href = `/executions/${encodeURIComponent(execution.id)}`;
  setStatus(status, execution.status);
  const done = await followExecution(execution.id, 0, {
    log: (data) => appendLine(logs, data),
    status: (value) => setStatus(status, value),
    problem: (message) => console.warn(message),
  });
  setStatus(status, done.status);
  if (done.result && done.result.encoding === "json") {
    resultPre.hidden = false;
    resultPre.textContent = JSON.stringify(done.result.value, null, 2);
  } else if (done.result) {
    resultPre.hidden = false;
    resultPre.textContent = `A Python object the server does not open: ${done.result.size} bytes of dill (download it from the execution's page).`;
  }
  if (done.error) {
    errorPre.hidden = false;
    errorPre.textContent = errorTraceback(done.error);
  }
}

// An execution's page: live logs and status, then the result; the cancel button.
function setupExecution() {
  const facts = document.getElementById("execution");
  if (!facts) return;
  const eid = facts.dataset.eid;
  const status = document.getElementById("status");
  const cancel = document.getElementById("cancel");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    const response = await fetch(`${API}/v1/executions/${encodeURIComponent(eid)}/cancel`, {
      method: "POST",
      headers: authHeaders(),
    });
    if (!response.ok) {
      cancel.disabled = false;
      alert(await errorText(response));
    }
  });
  if (TERMINAL.has(facts.dataset.status)) return;
  const logs = document.getElementById("logs");
  followExecution(eid, Number(facts.dataset.seq) || 0, {
    log: (data) => appendLine(logs, data),
    status: (value) => {
      setStatus(status, value);
      facts.dataset.status = value;
      if (TERMINAL.has(value)) cancel.hidden = true;
    },
    problem: (message) => console.warn(message),
  })
    .then((execution) => {
      setStatus(status, execution.status);
      cancel.hidden = true;
      const start = execution.started_at;
      const end = execution.finished_at;
      if (start && end) document.getElementById("runtime").textContent = `${(end - start).toFixed(2)} s`;
      const box = document.getElementById("result");
      const shown = showEnd(execution, box.firstElementChild || box, document.getElementById("error"));
      if (shown.tagName === "PRE") shown.id = "result-json";
    })
    .catch((err) => console.error(err));
}

// The executions list: rows change status live, new ones appear on top.
function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
}

function cell(text, child) {
  const td = document.createElement("td");
  if (child) td.appendChild(child);
  else td.textContent = text;
  return td;
}

function newRow(execution, names) {
  const tr = document.createElement("tr");
  tr.dataset.eid = execution.id;
  const link = document.createElement("a");
  link.href = `/executions/${encodeURIComponent(execution.id)}`;
  const code = document.createElement("code");
  code.textContent = execution.id.slice(0, 8);
  link.appendChild(code);
  const badge = document.createElement("span");
  setStatus(badge, execution.status);
  const runtime = cell("");
  runtime.className = "runtime";
  for (const td of [
    cell("", link),
    cell(names[execution.daisi_id] || execution.daisi_id),
    cell(execution.endpoint),
    cell("", badge),
    cell(when(execution.created_at)),
    runtime,
  ]) {
    tr.appendChild(td);
  }
  return tr;
}

function setupExecutions() {
  const table = document.getElementById("executions");
  if (!table) return;
  const names = {};
  for (const option of document.querySelectorAll("#filter-daisi option")) {
    if (option.value) names[option.value] = option.textContent;
  }
  const daisi = table.dataset.daisi;
  const wanted = table.dataset.status ? new Set(table.dataset.status.split(",")) : null;
  const body = table.tBodies[0];
  const url = `${API}/v1/events` + (daisi ? `?daisi=${encodeURIComponent(daisi)}` : "");
  const onEvent = (type, execution) => {
    if (type === "overflow") {
      location.reload();
      return;
    }
    let row = body.querySelector(`tr[data-eid="${CSS.escape(execution.id)}"]`);
    if (!row) {
      if (table.dataset.live !== "yes" || (wanted && !wanted.has(execution.status))) return;
      row = newRow(execution, names);
      body.insertBefore(row, body.firstChild);
      const empty = document.getElementById("no-executions");
      if (empty) empty.remove();
    }
    setStatus(row.querySelector(".status"), execution.status);
    if (execution.started_at && execution.finished_at) {
      row.querySelector(".runtime").textContent = `${(execution.finished_at - execution.started_at).toFixed(2)} s`;
    }
  };
  (async () => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      try {
        await readEvents(url, onEvent, () => (table.dataset.following = "yes"));
      } catch (err) {
        console.warn(err);
      }
      table.dataset.following = "no";
      await sleep(2000);
    }
  })();
}

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  setupForms();
  setupExecution();
  setupExecutions();
});
