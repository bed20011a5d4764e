// The pagescribe playground: render a document on the server, then stream each page's text from /v1.
"use strict";

const state = { name: "document", pages: [], texts: [], controller: null };
const $ = (id) => document.getElementById(id);

function headers(extra) {
  const key = $("api-key").value.trim();
  return Object.assign(key ? { Authorization: "Bearer " + key } : {}, extra || {});
}

async function failure(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (e) {
    return response.statusText || "HTTP " + response.status;
  }
}

function status(text) { $("status").textContent = text; }

async function loadPrompts() {
  const response = await fetch("/ui/prompts");
  const select = $("prompt");
  for (const prompt of (await response.json()).prompts) {
    const option = document.createElement("option");
    option.value = prompt.name;
    option.textContent = prompt.name;
    option.selected = prompt.default;
    select.appendChild(option);
  }
  const models = await fetch("/v1/models", { headers: headers() });
  if (models.ok) $("model").textContent = (await models.json()).data[0].id;
}

async function upload(file) {
  state.name = file.name.replace(/\.[^.]*$/, "") || "document";
  status("Rendering " + file.name + "…");
  $("pages").textContent = "";
  state.pages = [];
  state.texts = [];
  setButtons(false);
  const response = await fetch("/ui/render", {
    method: "POST", body: file, headers: headers({ "Content-Type": "application/octet-stream", "X-Filename": file.name }),
  });
  if (!response.ok) { status("Could not read " + file.name + ": " + (await failure(response))); return; }
  state.pages = (await response.json()).pages;
  for (const page of state.pages) $("pages").appendChild(pageView(page));
  state.texts = state.pages.map(() => "");
  status(state.pages.length + " page(s). Pick a prompt and transcribe.");
  $("run").disabled = false;
}

function pageView(page) {
  const box = document.createElement("article");
  box.className = "page";
  box.dataset.page = page.page;
  const image = document.createElement("img");
  image.src = page.image;
  image.alt = "page " + page.page;
  const side = document.createElement("div");
  const title = document.createElement("h2");
  title.textContent = "Page " + page.page;
  const text = document.createElement("pre");
  text.className = "text";
  side.append(title, text);
  box.append(image, side);
  return box;
}

async function transcribe() {
  setButtons(true);
  state.controller = new AbortController();
  try {
    for (let i = 0; i < state.pages.length; i++) {
      status("Page " + (i + 1) + " of " + state.pages.length + "…");
      await transcribePage(i, state.controller.signal);
    }
    status("Done: " + state.pages.length + " page(s).");
  } catch (error) {
    status(error.name === "AbortError" ? "Stopped." : "Failed: " + error.message);
  } finally {
    state.controller = null;
    setButtons(false);
  }
}

async function transcribePage(index, signal) {
  const page = state.pages[index];
  const box = $("pages").children[index];
  const out = box.querySelector("pre");
  out.textContent = "";
  state.texts[index] = "";
  box.classList.add("running");
  const body = {
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: page.image } }] }],
    prompt: $("prompt").value,
    max_tokens: Number($("max-tokens").value) || 1024,
    temperature: 0,
    stream: true,
  };
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", body: JSON.stringify(body), signal, headers: headers({ "Content-Type": "application/json" }),
    });
    if (!response.ok) throw new Error(await failure(response));
    await readEvents(response, (event) => {
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (event.error) throw new Error(event.error.message);
      if (delta && delta.content) {
        state.texts[index] += delta.content;
        out.textContent = state.texts[index];
      }
    });
  } finally {
    box.classList.remove("running");
  }
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.startsWith(":")) continue; // a keep-alive comment while the page waits
      const data = block.replace(/^data: ?/, "");
      if (data === "[DONE]") return;
      if (data) onEvent(JSON.parse(data));
    }
  }
}

function markdown() {
  const parts = ["# " + state.name + "\n"];
  state.pages.forEach((page, i) => parts.push("## Page " + page.page + "\n\n" + (state.texts[i] || "").trim() + "\n"));
  return parts.join("\n");
}

function setButtons(running) {
  const have = state.texts.some((t) => t);
  $("run").disabled = running || !state.pages.length;
  $("stop").disabled = !running;
  $("copy").disabled = running || !have;
  $("download").disabled = running || !have;
}

function download() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([markdown()], { type: "text/markdown" }));
  link.download = state.name + ".md";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  $("run").addEventListener("click", transcribe);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("copy").addEventListener("click", async () => {
    await navigator.clipboard.writeText(markdown());
    status("Markdown copied.");
  });
  $("download").addEventListener("click", download);
  loadPrompts().catch((error) => status("Could not reach the server: " + error.message));
}

document.addEventListener("DOMContentLoaded", wire);
