// Field problems on a form, as the clinician sees them: each message next to
// its field (the page's own [data-pseudoform-error-for] element, or a
// `role=alert` paragraph made after the field's label), the controls marked
// `aria-invalid` and described by their message, every problem at once in
// the order of the form. The in-page binding shows identifying and clinical
// problems on the registry's form with it; the identity frame shows the
// identifying ones on its own form with the same code.

/**
 * A problem as a form shows it.
 * @typedef {object} Shown
 * @property {string} key the field name (identifying) or control name (clinical)
 * @property {string} [code] an identifying field's `<field>.<rule>`
 * @property {string} label what the clinician reads as the field's name
 * @property {string} message the sentence next to the field
 * @property {Element[]} targets controls (and group) marked aria-invalid
 * @property {HTMLElement | undefined} anchor where the message goes (after it,
 *   or inside a group); none: the message is shown elsewhere (in a frame)
 * @property {boolean} inside whether the message goes at the end of `anchor`
 * @property {(() => void) | undefined} focus moves the focus to the field
 * @property {Element} [position] where the problem is in the form, when it
 *   has neither anchor nor targets (the identity frame's element)
 */

/**
 * Where a problem is in the document, for the order.
 * @param {Shown} p
 */
const positionOf = (p) => p.anchor ?? p.targets[0] ?? p.position;

/**
 * Problems in the order of the document.
 * @param {Shown[]} problems
 * @returns {Shown[]}
 */
export function inFormOrder(problems) {
  return [...problems].sort((a, b) => {
    const x = positionOf(a);
    const y = positionOf(b);
    if (!x || !y) return x ? -1 : y ? 1 : 0;
    if (x === y) return 0;
    return x.compareDocumentPosition(y) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
  });
}

/**
 * The problem view of `root` (a form).
 * @param {HTMLElement} root
 */
export function problemView(root) {
  /** The elements the view made for messages. @type {Set<HTMLElement>} */
  const made = new Set();
  /** The controls it marked invalid, with the message ids it added to their aria-describedby. */
  /** @type {Map<Element, string[]>} */
  const marked = new Map();

  /**
   * The element that shows the message of a problem: the page's own
   * [data-pseudoform-error-for] element, or one made next to the field.
   * @param {Shown} problem
   * @returns {HTMLElement | undefined}
   */
  const messageElement = (problem) => {
    /** @type {HTMLElement | null} */
    let element = root.querySelector(`[data-pseudoform-error-for="${CSS.escape(problem.key)}"]`);
    if (!element) {
      if (!problem.anchor) return undefined;
      element = document.createElement("p");
      element.className = "pseudoform-error";
      element.dataset.pseudoformErrorFor = problem.key;
      element.setAttribute("role", "alert");
      element.hidden = true;
      if (problem.inside) problem.anchor.append(element);
      else {
        const label = problem.anchor.parentElement;
        const after = label instanceof HTMLLabelElement ? label : problem.anchor;
        after.insertAdjacentElement("afterend", element);
      }
      made.add(element);
    }
    element.id ||= `pseudoform-error-${problem.key}`;
    return element;
  };

  return {
    /** Hides every message and unmarks every control. */
    clear() {
      for (const [element, added] of marked) {
        element.removeAttribute("aria-invalid");
        const describedBy = (element.getAttribute("aria-describedby") ?? "")
          .split(/\s+/)
          .filter((id) => id && !added.includes(id));
        if (describedBy.length > 0) element.setAttribute("aria-describedby", describedBy.join(" "));
        else element.removeAttribute("aria-describedby");
      }
      marked.clear();
      for (const element of root.querySelectorAll("[data-pseudoform-error-for]")) {
        const message = /** @type {HTMLElement} */ (element);
        message.hidden = true;
        message.textContent = "";
      }
    },

    /**
     * Shows every problem at once, in the order of the form, and focuses the
     * first that can take the focus. Returns them in that order.
     * @param {Shown[]} problems
     * @returns {Shown[]}
     */
    show(problems) {
      const ordered = inFormOrder(problems);
      for (const problem of ordered) {
        const element = messageElement(problem);
        if (element) {
          element.textContent = problem.message;
          element.hidden = false;
        }
        for (const target of problem.targets) {
          target.setAttribute("aria-invalid", "true");
          const added = marked.get(target) ?? [];
          marked.set(target, added);
          if (!element) continue;
          const ids = (target.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
          if (!ids.includes(element.id)) {
            target.setAttribute("aria-describedby", [...ids, element.id].join(" "));
            added.push(element.id);
          }
        }
      }
      ordered.find((p) => p.focus)?.focus?.();
      return ordered;
    },

    /** Removes the messages the view made. */
    destroy() {
      this.clear();
      for (const element of made) element.remove();
      made.clear();
    },
  };
}

/** @typedef {ReturnType<typeof problemView>} ProblemView */
