// textdiffusion serve: the page. Runs a call as server-sent events (POST /api/{task}/stream), draws each
// sampler step (masked positions as blocks, tokens revealed at that step highlighted) and keeps the steps for
// the replay slider. No build step, no dependencies.
"use strict";

const MASK = "\u2591"; // a masked position, as the server's decode_with_masks writes it (data/tokenizers.py MASK_CHAR)

const EXAMPLES = {
  generate: "ROMEO:",
  infill: "KING RICHARD III:\nNow is the winter of our ___\nMade glorious summer by this sun of ___.",
  denoise: "I recieve teh letter yesterday, this is a tset.",
  style: "the food was cold and the service was slow .",
};
const LABELS = { generate: "Generate", infill: "Infill", denoise: "Denoise", style: "Style", caption: "Caption" };
const HINTS = {
  generate: "Every position starts masked; each step reveals some of them.",
  infill: "Each run of three or more underscores (___) is a blank; everything else is kept. Without a blank length, the model first scores candidate lengths for each blank (seconds to a minute on a CPU).",
  denoise: "The noisy text conditions the model, which writes the correction.",
  style: "The words the target attribute disfavours are masked and rewritten.",
  caption: "The image conditions every step through cross-attention.",
};

const $ = (id) => document.getElementById(id);
// (the server checks every field and answers clear errors: the form is not validated here, see `novalidate`)
const state = { info: null, task: null, texts: { ...EXAMPLES }, frames: [], result: null, running: false, timer: null, runs: 0 };
window.textdiffusion = state; // for the browser test and the curious

function modelsFor(task) {
  return state.info.models.filter((m) => m.tasks.includes(task));
}

function currentModel() {
  return state.info.models.find((m) => m.name === $("model").value);
}

function setStatus(text, counts = "") {
  $("status-text").innerHTML = text;
  $("status-counts").textContent = counts;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label ?? value;
  return o;
}

function selectTask(task) {
  if (state.task && $("text")) state.texts[state.task] = $("text").value;
  state.task = task;
  for (const b of $("tabs").children) b.setAttribute("aria-selected", String(b.dataset.task === task));
  for (const el of document.querySelectorAll("[data-tasks]")) {
    el.hidden = !el.dataset.tasks.split(" ").includes(task);
  }
  $("model").replaceChildren(...modelsFor(task).map((m) => option(m.name)));
  if (task in EXAMPLES && task !== "generate") $("text").value = state.texts[task] ?? "";
  $("text-caption").textContent = task === "infill" ? "Text with blanks (___)" : task === "denoise" ? "Noisy text" : "Text";
  $("hint").textContent = HINTS[task];
  selectModel();
}

function selectModel() {
  const m = currentModel();
  if (!m) return;
  $("steps").placeholder = `${m.steps} (model default)`;
  $("sampler").options[0].textContent = `model default (${m.sampler})`;
  $("steps").max = state.info.limits.steps;
  $("length").max = m.max_len;
  $("length").placeholder = `${Math.min(160, m.max_len)}`;
  $("n").max = state.info.limits.samples;
  $("blank-length").max = m.max_len;
  if (m.modes) {
    const names = { words: "words: lexicon-guided (no steps to watch)", lines: "whole lines: the model writes (streamed)" };
    $("mode").replaceChildren(...m.modes.map((x) => option(x, names[x])));
  }
  const labels = m.labels || [];
  $("to-field").hidden = state.task !== "style" || labels.length === 0;
  $("to").replaceChildren(...labels.map((x) => option(x)));
  if (labels.includes("positive")) $("to").value = "positive";
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function request() {
  const task = state.task;
  const common = { model: $("model").value, steps: numberOrNull("steps"), seed: numberOrNull("seed") ?? 0 };
  if ($("sampler").value) common.sampler = $("sampler").value;
  if (task === "caption") {
    const form = new FormData();
    const file = $("image").files[0];
    if (file) form.append("image", file);
    for (const [k, v] of Object.entries(common)) if (v !== null) form.append(k, String(v));
    return form;
  }
  const body = { ...common };
  if (task === "generate") {
    const prompt = $("prompt").value;
    if (prompt.trim()) body.prompt = prompt;
    body.length = numberOrNull("length") ?? Math.min(160, currentModel().max_len);
    body.n = numberOrNull("n") ?? 1;
  } else {
    body.text = $("text").value;
  }
  if (task === "infill") body.blank_length = numberOrNull("blank-length");
  if (task === "denoise") body.mode = $("mode").value || null;
  if (body.mode === "words") {
    delete body.steps; // word mode runs no sampler
    delete body.sampler;
  }
  if (task === "style" && $("to").value) body.to = $("to").value;
  return JSON.stringify(body);
}

// --- drawing -------------------------------------------------------------------------------------------------

function drawRow(runs) {
  const row = document.createElement("div");
  row.className = "row";
  for (const [kind, text] of runs) {
    if (kind === "m") {
      for (let i = 0; i < text.length; i++) {
        const block = document.createElement("span");
        block.className = "m";
        row.appendChild(block);
      }
    } else if (kind === "n") {
      const span = document.createElement("span");
      span.className = "n";
      span.textContent = text;
      row.appendChild(span);
    } else {
      row.appendChild(document.createTextNode(text));
    }
  }
  return row;
}

function showFrame(index) {
  const frame = state.frames[index];
  if (!frame) return;
  $("view").replaceChildren(...frame.rows.map(drawRow));
  $("slider").value = String(index + 1);
  const run = frame.run > 1 ? `run ${frame.run}, ` : "";
  $("step-label").textContent = `${run}${frame.step} / ${state.frames.length}`;
  const counts = `t = ${frame.t.toFixed(3)} · masked ${frame.masked} of ${frame.positions} · changed ${frame.changed}`;
  const verb = state.running ? "Refining" : "Replay";
  setStatus(`${verb}: <b>step ${frame.step}</b> of ${state.frames.length}${state.running ? "…" : ""}`, counts);
}

function showResult(result) {
  const box = $("result");
  box.replaceChildren();
  const texts = result.texts ?? [result.text];
  for (const text of texts) {
    const div = document.createElement("div");
    div.className = "text";
    if (state.task === "infill" && result.fills) {
      // the request's text around its blanks, with each fill marked
      const pieces = state.sent.text.split(/_{3,}/);
      pieces.forEach((piece, i) => {
        div.appendChild(document.createTextNode(piece));
        if (i < result.fills.length) {
          const mark = document.createElement("mark");
          mark.textContent = result.fills[i];
          div.appendChild(mark);
        }
      });
    } else {
      div.textContent = text;
    }
    box.appendChild(div);
  }
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const facts = [plural(result.network_calls, "network call"), `${result.seconds.toFixed(2)} s`, `${plural(result.steps_streamed, "step")} streamed`];
  if (result.task === "denoise") facts.unshift(result.changed ? "changed" : "no change made");
  if (result.lengths) facts.push(`blank lengths ${result.lengths.join(", ")}`);
  $("meta").textContent = facts.join(" · ") + (result.warnings.length ? ` · ${result.warnings.join("; ")}` : "");
}

// --- running -------------------------------------------------------------------------------------------------

function onEvent(kind, data) {
  if (kind === "queued") {
    setStatus(data.ahead ? `Waiting: ${data.ahead} call(s) ahead on this model…` : "Starting…");
  } else if (kind === "start") {
    const choosing = state.task === "infill" && state.sent.blank_length == null;
    setStatus(choosing ? "Choosing the blank lengths (scoring candidate lengths)…" : "Running…");
  } else if (kind === "step") {
    const follow = state.frames.length === 0 || Number($("slider").value) === state.frames.length;
    state.frames.push(data);
    $("slider").max = String(state.frames.length);
    if (follow) showFrame(state.frames.length - 1);
  } else if (kind === "progress") {
    setStatus(`Scoring lexicon candidates: <b>${data.done}</b> of ${data.total}…`);
  } else if (kind === "result") {
    state.result = data;
    showResult(data);
  } else if (kind === "error") {
    showError(data.error);
  }
}

async function readEvents(response) {
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
      let kind = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
    }
  }
}

async function run(event) {
  event.preventDefault();
  if (state.running) return;
  stopReplay();
  state.runs += 1;
  state.frames = [];
  state.result = null;
  state.running = true;
  document.body.dataset.state = "running";
  showError("");
  $("run").disabled = true;
  $("play").disabled = $("slider").disabled = true;
  $("slider").max = "1";
  $("step-label").textContent = "step –";
  $("view").replaceChildren();
  $("result").replaceChildren();
  $("meta").textContent = "";
  const task = state.task;
  const body = request();
  state.sent = task === "caption" ? {} : JSON.parse(body);
  $("note").textContent =
    task === "denoise" && state.sent.mode === "words"
      ? "Word mode changes only the words the lexicon does not know, each to the candidate the model finds most likely: the model scores candidates and runs no sampler, so there are no steps to show. Choose “whole lines” to watch the model write the correction."
      : "";
  setStatus("Sending…");
  try {
    const headers = task === "caption" ? {} : { "Content-Type": "application/json" };
    const response = await fetch(`/api/${task}/stream`, { method: "POST", headers, body });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({ error: response.statusText }));
      showError(answer.error || `error ${response.status}`);
    } else {
      await readEvents(response);
    }
  } catch (err) {
    showError(`the connection failed: ${err.message}`);
  } finally {
    state.running = false;
    $("run").disabled = false;
    const n = state.frames.length;
    $("play").disabled = $("slider").disabled = n < 2;
    if (n) showFrame(n - 1);
    else if (state.result) {
      setStatus("Done.", "");
      $("view").replaceChildren(Object.assign(document.createElement("span"), { className: "empty", textContent: "No sampler steps in this mode." }));
    } else setStatus($("error").hidden ? "Stopped." : "Failed.", "");
    document.body.dataset.state = state.result ? "done" : "failed";
  }
}

function stopReplay() {
  clearInterval(state.timer);
  state.timer = null;
  $("play").innerHTML = "&#9654;";
}

function replay() {
  if (state.timer) return stopReplay();
  let i = Number($("slider").value) >= state.frames.length ? 0 : Number($("slider").value) - 1;
  $("play").innerHTML = "&#10074;&#10074;";
  const delay = Math.max(30, Math.min(250, 4000 / state.frames.length));
  state.timer = setInterval(() => {
    showFrame(i++);
    if (i >= state.frames.length) stopReplay();
  }, delay);
}

async function init() {
  $("form").addEventListener("submit", run);
  $("model").addEventListener("change", selectModel);
  $("slider").addEventListener("input", () => {
    stopReplay();
    showFrame(Number($("slider").value) - 1);
  });
  $("play").addEventListener("click", replay);
  $("image").addEventListener("change", () => {
    const file = $("image").files[0];
    $("preview").hidden = !file;
    if (file) $("preview").src = URL.createObjectURL(file);
  });
  $("prompt").value = EXAMPLES.generate;
  try {
    const response = await fetch("/api/models");
    state.info = await response.json();
  } catch (err) {
    setStatus("Cannot reach the server.");
    return;
  }
  for (const task of state.info.tasks) {
    const b = document.createElement("button");
    b.type = "button";
    b.role = "tab";
    b.id = `tab-${task}`;
    b.dataset.task = task;
    b.textContent = LABELS[task] ?? task;
    b.addEventListener("click", () => selectTask(task));
    $("tabs").appendChild(b);
  }
  if (!state.info.tasks.length) {
    setStatus("No models are loaded.");
    return;
  }
  selectTask(state.info.tasks[0]);
  setStatus("Ready.");
  document.body.dataset.state = "ready";
}

init();
