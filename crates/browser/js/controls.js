// Reading a registry's form the way HTML means it, for the binding.
//
// Identifying fields: every element with data-pseudoform-field. A control
// (input, select, textarea) holds the value itself; any other element (a
// fieldset, a div) is a radio group, whose checked radio holds it. Radios
// need a name to form a group, so the binding gives a group's radios a name
// of its own and detaches them from the form (`form=""`): they group and
// move with the arrow keys, but no submission, not even a plain one, can
// carry them. Every other identifying control loses its name.
//
// Clinical fields: every other named control of the form, grouped by name as
// a submission groups them. A checkbox, a multi-select, or several controls
// of one name give a list of values (possibly empty), anything else one
// string. `required` and a value the browser cannot read (`badInput` of a
// half-typed date or number) are checked here; nothing is dropped silently.

const VALUELESS = new Set(["submit", "button", "reset", "image", "file"]);

/** @typedef {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} Control */

/**
 * @param {Element} element
 * @returns {element is Control}
 */
const isControl = (element) =>
  element instanceof HTMLInputElement || element instanceof HTMLSelectElement || element instanceof HTMLTextAreaElement;

/** @param {Control} c */
const isCheck = (c) => c instanceof HTMLInputElement && (c.type === "checkbox" || c.type === "radio");

/**
 * One identifying field: the marked elements and the controls that hold it.
 * @typedef {object} IdentifyingField
 * @property {string} field the field name (`birthName`, `sex`, `optOut`, …)
 * @property {HTMLElement[]} marked the elements with data-pseudoform-field
 * @property {Control[]} controls the controls that hold its value
 * @property {boolean} group whether it is a radio group (a marked non-control)
 */

/** The number of bindings, for the radio group names. */
let groups = 0;

/**
 * The identifying fields of `form`, in document order.
 * @param {HTMLFormElement} form
 * @returns {IdentifyingField[]}
 */
export function identifyingFields(form) {
  /** @type {Map<string, IdentifyingField>} */
  const fields = new Map();
  for (const element of form.querySelectorAll("[data-pseudoform-field]")) {
    if (!(element instanceof HTMLElement)) continue;
    const field = element.dataset.pseudoformField ?? "";
    let entry = fields.get(field);
    if (!entry) {
      entry = { field, marked: [], controls: [], group: false };
      fields.set(field, entry);
    }
    entry.marked.push(element);
    if (isControl(element)) {
      entry.controls.push(element);
    } else {
      entry.group = true;
      for (const radio of element.querySelectorAll("input[type=radio]")) {
        if (radio instanceof HTMLInputElement) entry.controls.push(radio);
      }
    }
  }
  return [...fields.values()];
}

/**
 * Makes sure no submission can carry an identifying control: names removed,
 * radio groups given their own name and detached from the form. Safe to
 * call again (controls added later are detached too).
 * @param {IdentifyingField[]} fields
 */
export function detach(fields) {
  for (const entry of fields) {
    const detached = entry.controls.find((c) => c.dataset.pseudoformGroup !== undefined);
    let groupName = detached?.name ?? "";
    for (const control of entry.controls) {
      const isRadio = control instanceof HTMLInputElement && control.type === "radio";
      if (control.dataset.pseudoformGroup !== undefined) continue;
      if (control.name) {
        console.warn("pseudoform: an identifying control had a name attribute; it was removed");
        control.removeAttribute("name");
      }
      if (isRadio) {
        groupName ||= `pseudoform-${++groups}-${entry.field}`;
        control.name = groupName;
        control.setAttribute("form", "");
        control.dataset.pseudoformGroup = "";
      }
    }
  }
}

/**
 * Undoes `detach` for the radio groups (names the binding gave).
 * @param {HTMLFormElement} form
 */
export function reattach(form) {
  for (const radio of form.querySelectorAll("input[data-pseudoform-group]")) {
    if (!(radio instanceof HTMLInputElement)) continue;
    radio.removeAttribute("name");
    radio.removeAttribute("form");
    delete radio.dataset.pseudoformGroup;
  }
}

/**
 * The value of an identifying field: the checked radio's (or a checkbox's),
 * or the first control with text; `badInput` when the browser holds input
 * it cannot give as a value (a half-typed `type=date`, letters in a
 * `type=number`).
 * @param {IdentifyingField} entry
 * @returns {{ value: string, badInput: boolean, checked: boolean }}
 */
export function readField(entry) {
  let value = "";
  let badInput = false;
  let checked = false;
  for (const control of entry.controls) {
    if (isCheck(control)) {
      const input = /** @type {HTMLInputElement} */ (control);
      if (input.checked) {
        checked = true;
        value ||= input.value;
      }
      continue;
    }
    if (control.validity?.badInput) badInput = true;
    if (!value && control.value.trim() !== "") value = control.value;
  }
  return { value, badInput, checked };
}

/**
 * Puts the identifying controls back to the page's defaults (the form's
 * reset does not reach detached radios).
 * @param {IdentifyingField[]} fields
 */
export function resetFields(fields) {
  for (const entry of fields) {
    for (const control of entry.controls) {
      if (isCheck(control)) {
        const input = /** @type {HTMLInputElement} */ (control);
        input.checked = input.defaultChecked;
      }
    }
  }
}

/**
 * One clinical field: the named controls of one name.
 * @typedef {object} ClinicalField
 * @property {string} name
 * @property {Control[]} controls
 * @property {boolean} list whether its value is a list
 * @property {boolean} required whether a control of it is `required`
 */

/**
 * The clinical fields of `form`, in document order: its named controls that
 * carry a value, are not disabled and are not (inside) an identifying one.
 * Names of the method's fields are left out (they would identify).
 * @param {HTMLFormElement} form
 * @param {(name: string) => boolean} identifying
 * @returns {ClinicalField[]}
 */
export function clinicalFields(form, identifying) {
  /** @type {Map<string, ClinicalField>} */
  const fields = new Map();
  for (const element of form.elements) {
    if (!isControl(element) || !element.name || element.disabled) continue;
    if (element instanceof HTMLInputElement && VALUELESS.has(element.type)) continue;
    if (element.closest("[data-pseudoform-field]")) continue;
    if (identifying(element.name)) {
      console.warn("pseudoform: a named control has the name of an identifying field and is not sent");
      continue;
    }
    let entry = fields.get(element.name);
    if (!entry) {
      entry = { name: element.name, controls: [], list: false, required: false };
      fields.set(element.name, entry);
    }
    entry.controls.push(element);
    entry.required ||= element.required;
  }
  for (const entry of fields.values()) {
    const single = entry.controls.filter((c) => !(c instanceof HTMLInputElement && c.type === "radio"));
    entry.list =
      single.length > 1 ||
      single.some(
        (c) =>
          (c instanceof HTMLInputElement && c.type === "checkbox") || (c instanceof HTMLSelectElement && c.multiple),
      );
  }
  return [...fields.values()];
}

/**
 * The value of a clinical field: a list of the checked, selected or typed
 * values, or one string ("" when a radio group has nothing checked).
 * @param {ClinicalField} entry
 * @returns {string | string[]}
 */
export function clinicalValue(entry) {
  /** @type {string[]} */
  const values = [];
  for (const control of entry.controls) {
    if (isCheck(control)) {
      const input = /** @type {HTMLInputElement} */ (control);
      if (input.checked) values.push(input.value);
    } else if (control instanceof HTMLSelectElement && control.multiple) {
      for (const option of control.selectedOptions) values.push(option.value);
    } else {
      values.push(control.value);
    }
  }
  return entry.list ? values : (values[0] ?? "");
}

/**
 * What is wrong with a clinical field: `format` when the browser holds
 * input it cannot give as a value, `required` when a required field has
 * no value (nothing checked, chosen or typed).
 * @param {ClinicalField} entry
 * @returns {"format" | "required" | undefined}
 */
export function clinicalProblem(entry) {
  if (entry.controls.some((c) => c.validity?.badInput)) return "format";
  if (!entry.required) return undefined;
  const value = clinicalValue(entry);
  const empty = Array.isArray(value) ? value.length === 0 : value.trim() === "";
  return empty ? "required" : undefined;
}

/**
 * The text of a label without the controls (and messages) inside it.
 * @param {Element | null | undefined} label
 */
function labelText(label) {
  if (!label) return "";
  const copy = /** @type {Element} */ (label.cloneNode(true));
  for (const inner of copy.querySelectorAll("input, select, textarea, .pseudoform-error")) inner.remove();
  return (copy.textContent ?? "").replace(/\s+/g, " ").trim();
}

/**
 * The element that holds a group of controls: the innermost fieldset (or
 * role group) of the form that contains them all, if any.
 * @param {HTMLFormElement} form
 * @param {Element[]} controls
 * @returns {HTMLElement | undefined}
 */
export function groupOf(form, controls) {
  const first = controls[0];
  let candidate = first?.parentElement?.closest("fieldset, [role=group], [role=radiogroup]");
  while (candidate && form.contains(candidate) && candidate !== form) {
    const holder = candidate;
    if (controls.every((c) => holder.contains(c))) return /** @type {HTMLElement} */ (holder);
    candidate = holder.parentElement?.closest("fieldset, [role=group], [role=radiogroup]");
  }
  return undefined;
}

/**
 * The name the clinician reads for a clinical field: the legend (or
 * aria-label) of its group when it has several controls, otherwise its
 * label, aria-label, or name.
 * @param {HTMLFormElement} form
 * @param {ClinicalField} entry
 */
export function clinicalLabel(form, entry) {
  const first = entry.controls[0];
  if (entry.controls.length > 1) {
    const group = groupOf(form, entry.controls);
    const legend = group?.querySelector(":scope > legend");
    const text = labelText(legend) || group?.getAttribute("aria-label") || "";
    if (text) return text;
  }
  return labelText(first?.labels?.[0]) || first?.getAttribute("aria-label") || entry.name;
}
