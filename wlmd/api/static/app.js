// wlmd worklist page. Talks to the REST API on the same origin; no libraries, no
// build step. Patient data never goes into a URL: the list is filtered by date,
// modality and station only, entries are addressed by their opaque id.
"use strict";

// Tags of the attributes the add form sets (PS3.6), for DICOM JSON (PS3.18 F.2).
const TAGS = {
  PatientName: "00100010", PatientID: "00100020", PatientBirthDate: "00100030",
  PatientSex: "00100040", AccessionNumber: "00080050",
  RequestedProcedureDescription: "00321060", ScheduledProcedureStepSequence: "00400100",
  Modality: "00080060", ScheduledStationAETitle: "00400001",
  ScheduledProcedureStepStartDate: "00400002", ScheduledProcedureStepStartTime: "00400003",
  ScheduledProcedureStepDescription: "00400007",
};

const $ = (selector) => document.querySelector(selector);
const state = { area: null, token: sessionStorage.getItem("wlmd-token") || "" };

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/dicom+json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "same-origin",
  });
  if (response.status === 401) {
    $("#token-box").hidden = false;
    throw new Error("this server needs an API token");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.reason) || `HTTP ${response.status}`);
    error.kind = data && data.kind;
    throw error;
  }
  return data;
}

function say(text) { $("#status").textContent = text; }

function dicomDate(value) { return value.replaceAll("-", ""); }
function dicomTime(value) { return value ? value.replaceAll(":", "").padEnd(6, "0") : ""; }
function shownDate(v) { return v.length === 8 ? `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6)}` : v; }
function shownTime(v) { return v.length >= 4 ? `${v.slice(0, 2)}:${v.slice(2, 4)}` : v; }
function shownName(v) { return v.replaceAll("^", " ").trim(); }

async function loadAreas() {
  const { areas } = await api("GET", "/api/areas");
  const select = $("#area");
  select.replaceChildren(...areas.map((name) => new Option(name, name)));
  state.area = areas[0] || null;
  if (!state.area) say("No storage area under the data files path.");
}

function entriesPath() {
  const params = new URLSearchParams();
  if (!$("#f-all-dates").checked && $("#f-date").value) {
    params.set("ScheduledProcedureStepStartDate", dicomDate($("#f-date").value));
  }
  const modality = $("#f-modality").value.trim().toUpperCase();
  const station = $("#f-station").value.trim().toUpperCase();
  if (modality) params.set("Modality", modality);
  if (station) params.set("ScheduledStationAETitle", station);
  const query = params.toString();
  return `/api/areas/${encodeURIComponent(state.area)}/entries${query ? "?" + query : ""}`;
}

function cell(text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label;
  return td;
}

async function loadEntries() {
  if (!state.area) return;
  const listing = await api("GET", entriesPath());
  const rows = listing.entries.map((entry) => {
    const tr = document.createElement("tr");
    tr.dataset.id = entry.id;
    tr.append(
      cell(shownDate(entry.ScheduledProcedureStepStartDate), "Date"),
      cell(shownTime(entry.ScheduledProcedureStepStartTime), "Time"),
      cell(shownName(entry.PatientName), "Patient"),
      cell(entry.PatientID, "Patient ID"),
      cell(entry.AccessionNumber, "Accession"),
      cell(entry.Modality, "Modality"),
      cell(entry.ScheduledStationAETitle, "Station"),
    );
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link delete";
    button.textContent = "Delete";
    button.addEventListener("click", () => confirmDelete(entry));
    const actions = cell("");
    actions.append(button);
    tr.append(actions);
    return tr;
  });
  $("#entries tbody").replaceChildren(...rows);
  $("#empty").hidden = rows.length > 0;
  const skipped = listing.skipped.length;
  $("#skipped").hidden = skipped === 0;
  $("#skipped").textContent = skipped
    ? `${skipped} file(s) in this area are not served: ${listing.skipped[0].reason}` : "";
  say(`${listing.total} entr${listing.total === 1 ? "y" : "ies"}`);
}

function confirmDelete(entry) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent =
    `Delete the entry for ${shownName(entry.PatientName)} ` +
    `(${entry.Modality}, ${shownDate(entry.ScheduledProcedureStepStartDate)} ` +
    `${shownTime(entry.ScheduledProcedureStepStartTime)})?`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await api("DELETE", `/api/areas/${encodeURIComponent(state.area)}/entries/${entry.id}`);
      say("Entry deleted.");
      await loadEntries();
    } catch (error) { say(`Not deleted: ${error.message}`); }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function element(vr, value) {
  if (vr === "PN") return { vr, Value: [{ Alphabetic: value }] };
  return { vr, Value: [value] };
}

function entryFromForm(form) {
  const root = {};
  const step = {};
  for (const field of form.querySelectorAll("[name]")) {
    let value = field.value.trim();
    if (!value) continue;
    if (field.dataset.vr === "DA") value = dicomDate(value);
    if (field.dataset.vr === "TM") value = dicomTime(value);
    if (["CS", "AE"].includes(field.dataset.vr)) value = value.toUpperCase();
    (field.hasAttribute("data-sps") ? step : root)[TAGS[field.name]] =
      element(field.dataset.vr, value);
  }
  root[TAGS.ScheduledProcedureStepSequence] = { vr: "SQ", Value: [step] };
  return root;
}

function clearErrors(form) {
  $("#add-error").hidden = true;
  for (const field of form.querySelectorAll("[name]")) {
    field.removeAttribute("aria-invalid");
    field.parentElement.querySelector(".field-error").textContent = "";
  }
}

// The server's reason names the attribute by keyword ("ScheduledProcedureStepSequence >
// Modality is missing or empty"): show it at that field, else above the form.
function showError(form, reason) {
  const named = [...form.querySelectorAll("[name]")]
    .filter((field) => reason.includes(field.name))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (named) {
    named.setAttribute("aria-invalid", "true");
    named.parentElement.querySelector(".field-error").textContent = reason;
    named.focus();
  }
  $("#add-error").textContent = `Not added: ${reason}`;
  $("#add-error").hidden = false;
}

async function submitEntry(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  try {
    const result = await api(
      "POST", `/api/areas/${encodeURIComponent(state.area)}/entries`, entryFromForm(form));
    form.reset();
    say(result.replaced ? "Entry updated." : "Entry added.");
    await loadEntries();
  } catch (error) {
    showError(form, error.message);
  }
}

async function start() {
  $("#f-date").value = today();
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadEntries().catch((x) => say(x.message)); });
  $("#area").addEventListener("change", (e) => { state.area = e.target.value; loadEntries().catch((x) => say(x.message)); });
  $("#add").addEventListener("submit", submitEntry);
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("wlmd-token", state.token);
    $("#token-box").hidden = true;
    showWorklist().catch((x) => say(x.message));
  });
  await showWorklist();
}

async function showWorklist() {
  await loadAreas();
  await loadEntries();
  document.body.dataset.ready = "true";  // for tests and people: the first list is shown
}

start().catch((error) => say(error.message));
