// The gallery's only script (no build step, nothing from elsewhere). Every page works without
// it; with it: copy an image, a link or a path; paste an image to search by it; more results as
// the page scrolls; previous and next result on a meme's page; keys ("/", arrows, Escape).
"use strict";

const RESULTS_KEY = "memes:results"; // the last list of results seen: its address and meme ids

// --- saying what happened --------------------------------------------------------------------

let toastTimer = null;
function say(message) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 4000);
}

// --- copying -----------------------------------------------------------------------------------

async function pngOf(url) {
  const answer = await fetch(url, { credentials: "same-origin" });
  if (!answer.ok) throw new Error(`the image could not be read (${answer.status})`);
  const blob = await answer.blob();
  if (blob.type === "image/png") return blob;
  const bitmap = await createImageBitmap(blob); // clipboards take PNG: draw it and encode
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  return new Promise((done, fail) => canvas.toBlob((png) => (png ? done(png) : fail(new Error("no PNG"))), "image/png"));
}

async function copyImage(id, button) {
  try {
    if (!navigator.clipboard || !window.ClipboardItem) throw new Error("no clipboard API here");
    // The item takes the promise, so the click's permission holds while the image is fetched.
    await navigator.clipboard.write([new ClipboardItem({ "image/png": pngOf(`/api/memes/${id}/image`) })]);
    say("Image copied: paste it anywhere");
  } catch (error) {
    selectImage(button);
  }
}

function selectImage(button) {
  // Where the browser refuses (not a secure page, no permission): select the image instead, for
  // the browser's own Copy (Ctrl+C or the image's menu).
  const holder = button.closest(".card, article.meme");
  const img = holder && holder.querySelector("img");
  if (!img) { say("This browser would not copy the image"); return; }
  const range = document.createRange();
  range.selectNode(img);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  say("The browser would not copy it: the image is selected, press Ctrl+C (or use its menu)");
}

async function copyText(text, what) {
  try {
    if (!navigator.clipboard) throw new Error("no clipboard API here");
    await navigator.clipboard.writeText(text);
    say(`${what} copied`);
  } catch (error) {
    const field = document.createElement("textarea"); // the old way, for pages that are not secure
    field.value = text;
    field.setAttribute("readonly", "");
    field.className = "offscreen";
    document.body.appendChild(field);
    field.select();
    const done = document.execCommand && document.execCommand("copy");
    field.remove();
    say(done ? `${what} copied` : `Copy this ${what.toLowerCase()}: ${text}`);
  }
}

async function reveal(id) {
  const answer = await fetch(`/api/memes/${id}/reveal`, { method: "POST", headers: { "X-Memes-Request": "1" } });
  const body = await answer.json().catch(() => ({}));
  say(answer.ok ? `Shown in its folder: ${body.shown}` : body.error || `could not show it (${answer.status})`);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-image], [data-copy-link], [data-copy-text], [data-reveal]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.copyImage) copyImage(button.dataset.copyImage, button);
  else if (button.dataset.copyLink) copyText(new URL(button.dataset.copyLink, location.href).href, "Link");
  else if (button.dataset.copyText) copyText(button.dataset.copyText, "Path");
  else if (button.dataset.reveal) reveal(button.dataset.reveal);
});

// --- search by image: paste, and say it is working ----------------------------------------------

const byImage = document.getElementById("by-image");
function lookingAtImage() {
  document.getElementById("image-progress").hidden = false;
  byImage.querySelector("button[type=submit]").disabled = true;
  byImage.classList.add("busy");
}
if (byImage) {
  byImage.addEventListener("submit", lookingAtImage);
  document.addEventListener("paste", (event) => {
    const input = document.getElementById("image-file");
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (!file || !input) return;
    event.preventDefault();
    const files = new DataTransfer();
    files.items.add(new File([file], file.name || "pasted.png", { type: file.type }));
    input.files = files.files;
    lookingAtImage();
    byImage.submit();
  });
}

// --- images that cannot be shown get a placeholder -----------------------------------------------

function placeholder(img) {
  const box = document.createElement("span");
  box.className = "placeholder";
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", "no image");
  box.textContent = "no image";
  img.replaceWith(box);
}
document.addEventListener("error", (event) => {
  if (event.target instanceof HTMLImageElement) placeholder(event.target);
}, true);
document.querySelectorAll("img").forEach((img) => { if (img.complete && img.naturalWidth === 0 && img.src) placeholder(img); });

// --- results: more as the page scrolls, and remembered for the meme pages -------------------------

const results = document.getElementById("results");

function remember() {
  if (!results) return;
  const ids = [...results.querySelectorAll(".card")].map((card) => card.dataset.id);
  sessionStorage.setItem(RESULTS_KEY, JSON.stringify({ url: location.href, ids }));
}

let loading = false;
async function more() {
  const link = document.getElementById("more");
  if (!link || loading) return;
  loading = true;
  link.textContent = "Loading…";
  try {
    const answer = await fetch(link.href, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const shown = new Set([...results.querySelectorAll(".card")].map((card) => card.dataset.id));
    page.querySelectorAll("#results > .card").forEach((card) => {
      if (!shown.has(card.dataset.id)) results.appendChild(document.adoptNode(card));
    });
    const next = page.getElementById("more");
    if (next) { link.href = next.href; link.textContent = "More results"; } else link.parentElement.remove();
    remember();
  } catch (error) {
    link.textContent = "More results";
    say("More results could not be loaded");
  } finally {
    loading = false;
  }
  watchMore();
}

let watcher = null;
function watchMore() {
  const link = document.getElementById("more");
  if (!link || !("IntersectionObserver" in window)) return;
  if (watcher) watcher.disconnect();
  watcher = new IntersectionObserver((seen) => { if (seen.some((e) => e.isIntersecting)) more(); },
    { rootMargin: "600px" });
  watcher.observe(link);
}

if (results && results.children.length) {
  remember();
  watchMore();
  document.addEventListener("click", (event) => {
    if (event.target.id === "more") { event.preventDefault(); more(); }
  });
}

// --- a meme's page: back to the results, previous and next ----------------------------------------

const article = document.querySelector("article.meme");
const steps = document.getElementById("steps");
let stepTo = {};
if (article && steps) {
  const list = JSON.parse(sessionStorage.getItem(RESULTS_KEY) || "null");
  const at = list ? list.ids.indexOf(article.dataset.id) : -1;
  if (at >= 0) {
    steps.hidden = false;
    document.getElementById("back").href = list.url;
    document.getElementById("position").textContent = `${at + 1} of ${list.ids.length}`;
    for (const [name, other] of [["prev", list.ids[at - 1]], ["next", list.ids[at + 1]]]) {
      if (!other) continue;
      const link = document.getElementById(name);
      link.href = `/meme/${other}`;
      link.hidden = false;
      stepTo[name] = link.href;
    }
    stepTo.back = list.url;
  }
}

// --- keys ------------------------------------------------------------------------------------------

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]");
}

function cardLinks() {
  return [...document.querySelectorAll("ul.grid > .card > a:first-child")];
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const search = document.getElementById("q");
  if (event.key === "/" && !typing(event.target)) {
    event.preventDefault();
    if (search) { search.focus(); search.select(); } else location.href = "/";
    return;
  }
  if (event.key === "Escape") {
    if (typing(event.target)) { event.target.blur(); return; }
    if (article) { event.preventDefault(); location.href = stepTo.back || "/"; }
    return;
  }
  if (typing(event.target) && !(event.target === search && event.key === "ArrowDown")) return;
  if (article) {
    if (event.key === "ArrowLeft" && stepTo.prev) location.href = stepTo.prev;
    if (event.key === "ArrowRight" && stepTo.next) location.href = stepTo.next;
    return;
  }
  // On a page of cards, the arrows move between them; Enter opens the one that has the focus.
  const links = cardLinks();
  if (!links.length) return;
  const here = links.indexOf(event.target);
  const across = Math.max(1, Math.round(links[0].closest("ul").clientWidth / links[0].closest("li").offsetWidth));
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: across, ArrowUp: -across }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  const to = here < 0 ? 0 : Math.min(links.length - 1, Math.max(0, here + step));
  links[to].focus();
  links[to].scrollIntoView({ block: "nearest" });
});
