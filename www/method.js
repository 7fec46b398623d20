// Demo of the method: normalises every field and shows each type's input
// value as the clinician types. Nothing leaves the page.
import { describeError, methodVersion, normalise, pseudonymInput, ready } from "./pkg/index.js";

const FIELDS = {
  birthName: "Geboortenaam", birthDate: "Geboortedatum", sex: "Geslacht", initial: "Voorletter",
  postcode: "Postcode", houseNumber: "Huisnummer", houseNumberAddition: "Toevoeging",
  bsn: "BSN", mrn: "Patiëntnummer", provider: "Zorgaanbieder",
};
const TYPES = ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"];

function row(body, label, fn) {
  const tr = body.insertRow();
  tr.insertCell().textContent = label;
  const cell = tr.insertCell();
  try {
    cell.textContent = fn();
    cell.className = "ok";
  } catch (e) {
    cell.textContent = describeError(e);
    cell.className = "error";
  }
}

function render(form) {
  const identity = Object.fromEntries(new FormData(form));
  const fields = document.querySelector("#fields tbody");
  const types = document.querySelector("#types tbody");
  fields.replaceChildren();
  types.replaceChildren();
  for (const [name, label] of Object.entries(FIELDS)) {
    if (identity[name] !== "") row(fields, label, () => normalise(name, identity[name]));
  }
  for (const type of TYPES) row(types, type, () => pseudonymInput(type, identity));
}

await ready();
document.getElementById("method-version").textContent = String(methodVersion());
const form = document.getElementById("identity");
form.addEventListener("input", () => render(form));
render(form);
