// The processors' workbench page (www/workbench/index.html), bundled by the
// build as pkg/pseudoform-workbench.js: open a CSV extract in the browser,
// map its columns, check every row, pseudonymise in chunks and deliver to
// the registry in idempotent batches (or download the pseudonymised file),
// with a checkpoint to resume after a reload. Nothing of the file leaves
// the page but what pseudonymiseBatch() sends the TTP (blinded elements)
// and the registry batches (pseudonyms and the clinical columns). Values
// are shown on this screen only (the preview); never in storage, a URL, a
// log, an error or the report.
/** @import * as api from "../index.js" */
import { PseudoformError, TtpSession, describeError, popupLogin, ready } from "../index.js";
import { requestJson } from "../http.js";
import { fetchPolicy } from "../ttp.js";
import { fieldLabel } from "../messages.js";
import { readTable } from "./file.js";
import {
  CLINICAL,
  UNUSED,
  clinicalName,
  loadPreset,
  mappingFor,
  mappingProblems,
  roleOptions,
  savePreset,
} from "./mapping.js";
import { checkRows, reportCsv, reportLabel } from "./rows.js";
import { deliveredRows, dropCheckpoint, loadCheckpoint, newRunId, saveCheckpoint } from "./checkpoint.js";
import { MAX_CHUNK, Run } from "./run.js";
import { MAX_WORKERS, defaultWorkers } from "./pool.js";
import { Output } from "./output.js";

/** Rows shown in the preview and lines in the on-screen report. */
const PREVIEW_ROWS = 5;
const REPORT_LINES = 200;

/** Dutch texts of the workbench's own codes. */
const TEXTS = /** @type {Record<string, string>} */ ({
  "file.quotes": "Het bestand heeft een aanhalingsteken dat niet wordt gesloten.",
  "file.empty": "Het bestand heeft geen kopregel met gegevensrijen eronder.",
  "file.tooLarge": "Het bestand heeft te veel rijen.",
  "file.unreadable": "Het bestand kan niet worden gelezen.",
  "file.xlsx": "De Excel-werkmap kan niet worden gelezen (alleen .xlsx; een grote werkmap: sla hem op als CSV).",
  "file.otherCheckpoint":
    "Er is een onderbroken aanlevering van een ander bestand. Open dat bestand om te hervatten, of verwijder de onderbroken aanlevering.",
  "checkpoint.storage":
    "De browser kan het controlepunt niet bewaren (opslag vol of geweigerd). De aanlevering is gestopt; wat al is opgeslagen wordt bij hervatten niet dubbel opgeslagen.",
  "mapping.duplicate": "Dit veld is aan meer dan één kolom gekoppeld.",
  "mapping.name": "De naam in de registratie mag alleen letters, cijfers, _ en - bevatten (hoogstens 64).",
  "mapping.identifyingName": "Deze naam is die van een identificerend gegeven; de registratie weigert hem.",
  "mapping.noIdentity": "Koppel eerst de identificerende kolommen.",
});

/** @param {unknown} error */
function say(error) {
  const e = PseudoformError.from(error);
  const text = TEXTS[e.code] ?? describeError(e, "nl");
  const server = /** @type {{ serverCode?: string }} */ (e).serverCode;
  return `${text} (${[e.code, server, e.field ? `veld ${e.field}` : ""].filter(Boolean).join(", ")})`;
}

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const button = (/** @type {string} */ id) => /** @type {HTMLButtonElement} */ ($(id));

/** @param {HTMLElement} parent @param {string} tag @param {string} [text] */
function add(parent, tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  parent.append(e);
  return e;
}

/** @param {string} name @param {Blob} blob */
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `1 min 5 s`, `12 s` */
function duration(/** @type {number} */ seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/**
 * @param {HTMLElement} element
 * @param {string} text
 * @param {string} kind
 */
function status(element, text, kind) {
  element.textContent = text;
  element.dataset.kind = kind;
}

async function main() {
  const root = $("workbench");
  const base = location.href;
  const configUrl = new URL(root.dataset.config ?? "../api/form-config", base).toString();
  const batchUrl = new URL(root.dataset.batches ?? "../api/batches", base).toString();
  const workerUrl = root.dataset.worker ? new URL(root.dataset.worker, base) : undefined;
  // One Web Worker per core; `?workers=N` asks for N (0: in the page), for a comparison or a diagnosis.
  const asked = new URL(base).searchParams.get("workers");
  const workers = asked !== null && /^\d+$/.test(asked) ? Math.min(MAX_WORKERS, Number(asked)) : defaultWorkers();
  const pageStatus = $("page-status");
  status(pageStatus, "De werkbank wordt geladen…", "loading");

  /** @type {any} */
  let config;
  /** @type {api.TypeCode[]} */
  let required;
  try {
    config = await requestJson("registry", configUrl, { method: "GET" }, { timeoutMs: 10_000 });
    await ready();
    const policy = await fetchPolicy({
      ttp: config.ttp,
      recipientOrganization: config.recipientOrganization,
      recipientScope: config.recipientScope,
      timeoutMs: 10_000,
    });
    required = /** @type {api.TypeCode[]} */ (policy.requiredTypes);
  } catch (error) {
    status(pageStatus, `De werkbank kan niet starten: ${say(error)}`, "error");
    return;
  }
  const registry = `${config.recipientOrganization}|${config.recipientScope}`;
  status(pageStatus, `Registratie ${config.recipientScope} (${config.recipientOrganization}).`, "ready");
  const session = config.login
    ? new TtpSession({ ttp: config.ttp, subjectToken: popupLogin(config.login) })
    : undefined;
  /** @type {Omit<api.PseudonymiseOptions, "signal">} */
  const options = {
    ttp: config.ttp,
    recipientOrganization: config.recipientOrganization,
    recipientScope: config.recipientScope,
    types: config.types,
    ttpSigningKeys: config.ttpSigningKeys,
    session,
    accessToken: session ? undefined : config.accessToken || undefined,
    timeoutMs: 30_000,
  };

  /** @type {import("./file.js").Table | undefined} */
  let table;
  /** @type {import("./mapping.js").Mapping} */
  let mapping = [];
  /** @type {import("./rows.js").Checked | undefined} */
  let checked;
  /** @type {import("./rows.js").Problem[]} */
  let refusals = [];
  /** @type {import("./checkpoint.js").Checkpoint | undefined} */
  let resuming;
  /** @type {Run | undefined} */
  let run;
  /** The download being written (download modes). @type {Output | undefined} */
  let file;

  const fileInfo = $("file-info");
  const checkpointInfo = $("checkpoint-info");
  const runStatus = $("run-status");
  const progress = /** @type {HTMLProgressElement} */ ($("progress"));
  const chunkInput = /** @type {HTMLInputElement} */ ($("chunk"));

  const showCheckpoint = () => {
    const c = loadCheckpoint(registry);
    checkpointInfo.hidden = !c;
    button("drop-checkpoint").hidden = !c;
    if (c) {
      checkpointInfo.textContent = c.finished
        ? `Laatste aanlevering: voltooid, ${deliveredRows(c)} van ${c.total} rijen verwerkt.`
        : `Onderbroken aanlevering: ${deliveredRows(c)} van ${c.total} rijen verwerkt. Open hetzelfde bestand om te hervatten.`;
    }
  };
  showCheckpoint();
  button("drop-checkpoint").addEventListener("click", () => {
    dropCheckpoint(registry);
    resuming = undefined;
    showCheckpoint();
    if (table) openTable(table);
  });

  /** What becomes of the result: delivered, or downloaded as CSV or as FHIR Bundles. */
  const output = () =>
    /** @type {"deliver" | "csv" | "fhir"} */ (
      /** @type {HTMLInputElement} */ (document.querySelector("input[name=mode]:checked")).value
    );
  const mode = () => (output() === "deliver" ? "deliver" : "download");

  // 1. The file.
  $("file").addEventListener("change", async (event) => {
    const input = /** @type {HTMLInputElement} */ (event.target);
    const file = input.files?.[0];
    if (!file) return;
    status(fileInfo, "Het bestand wordt gelezen (in deze browser)…", "busy");
    try {
      openTable(await readTable(file));
    } catch (error) {
      table = undefined;
      for (const id of ["step-map", "step-check", "step-run"]) $(id).hidden = true;
      status(
        fileInfo,
        say(error instanceof PseudoformError ? error : new PseudoformError("file.unreadable", "unreadable", "file")),
        "error",
      );
    }
  });

  /** @param {import("./file.js").Table} t */
  function openTable(t) {
    table = t;
    checked = undefined;
    refusals = [];
    const c = loadCheckpoint(registry);
    resuming = c && c.file === t.hash ? c : undefined;
    const encoding = t.encoding === "utf-8" ? "UTF-8" : "Windows-1252";
    const delimiter = t.delimiter === "\t" ? "tab" : `"${t.delimiter}"`;
    const how =
      t.encoding === "xlsx"
        ? "gelezen als Excel-werkmap (eerste blad)"
        : `gelezen als ${encoding}, scheidingsteken ${delimiter}`;
    status(
      fileInfo,
      `${t.rows.length} rijen, ${t.header.length} kolommen; ${how}. Het bestand is niet verstuurd.`,
      "ready",
    );
    if (c && !c.finished && c.file !== t.hash) {
      status(fileInfo, say(new PseudoformError("file.otherCheckpoint", "another file", "file")), "error");
      for (const id of ["step-map", "step-check", "step-run"]) $(id).hidden = true;
      return;
    }
    mapping = resuming ? resuming.mapping.map((m) => ({ ...m })) : mappingFor(t.header, loadPreset(registry));
    chunkInput.value = String(resuming ? resuming.chunkSize : chunkInput.value || 100);
    chunkInput.disabled = Boolean(resuming);
    button("start").textContent = !resuming
      ? "Start"
      : resuming.finished
        ? "Opnieuw afleveren (zelfde batches)"
        : "Hervatten";
    if (resuming) {
      status(
        runStatus,
        resuming.finished
          ? `Dit bestand is al afgeleverd (${deliveredRows(resuming)} van ${resuming.total} rijen verwerkt). Opnieuw afleveren stuurt dezelfde batches; de registratie slaat niets dubbel op.`
          : `Hervatten: ${deliveredRows(resuming)} van ${resuming.total} rijen zijn al verwerkt; de koppeling van toen wordt gebruikt.`,
        "resumable",
      );
    } else status(runStatus, "", "");
    for (const id of ["step-map", "step-check", "step-run"]) $(id).hidden = false;
    renderMapping();
  }

  // 2. The mapping and the preview.
  function renderMapping() {
    const t = /** @type {import("./file.js").Table} */ (table);
    const body = /** @type {HTMLElement} */ ($("mapping").querySelector("tbody"));
    body.replaceChildren();
    const problems = new Map(mappingProblems(mapping).map(([i, code]) => [i, code]));
    t.header.forEach((h, i) => {
      const tr = add(body, "tr");
      add(tr, "td", h);
      const select = /** @type {HTMLSelectElement} */ (add(add(tr, "td"), "select"));
      select.dataset.column = String(i);
      select.disabled = Boolean(resuming);
      for (const [value, label] of roleOptions()) {
        const o = /** @type {HTMLOptionElement} */ (add(select, "option", label));
        o.value = value;
      }
      select.value = mapping[i].role;
      select.addEventListener("change", () => {
        const role = /** @type {import("./mapping.js").ColumnMap["role"]} */ (select.value);
        mapping[i] = role === CLINICAL ? { role, name: mapping[i].name ?? clinical(h) } : { role };
        checked = undefined;
        renderMapping();
      });
      const nameCell = add(tr, "td");
      if (mapping[i].role === CLINICAL) {
        const name = /** @type {HTMLInputElement} */ (add(nameCell, "input"));
        name.value = mapping[i].name ?? "";
        name.dataset.name = String(i);
        name.disabled = Boolean(resuming);
        name.addEventListener("change", () => {
          mapping[i] = { role: CLINICAL, name: name.value.trim() };
          checked = undefined;
          renderMapping();
        });
      }
      const problem = add(tr, "td", problems.has(i) ? TEXTS[/** @type {string} */ (problems.get(i))] : "");
      problem.className = "problem";
    });
    renderPreview();
  }
  const clinical = (/** @type {string} */ h) => clinicalName(h);

  function renderPreview() {
    const t = /** @type {import("./file.js").Table} */ (table);
    const preview = $("preview");
    preview.replaceChildren();
    const head = add(add(preview, "thead"), "tr");
    const used = mapping.map((m, i) => [m, i]).filter(([m]) => /** @type {any} */ (m).role !== UNUSED);
    for (const [m] of /** @type {[import("./mapping.js").ColumnMap, number][]} */ (used)) {
      add(
        head,
        "th",
        m.role === CLINICAL ? `${m.name} (klinisch)` : m.role === "optOut" ? "Bezwaar" : fieldLabel(m.role, "nl"),
      );
    }
    const body = add(preview, "tbody");
    for (const row of t.rows.slice(0, PREVIEW_ROWS)) {
      const tr = add(body, "tr");
      for (const [, i] of /** @type {[unknown, number][]} */ (used)) add(tr, "td", row[i] ?? "");
    }
  }

  button("save-preset").addEventListener("click", () => {
    if (!table) return;
    savePreset(registry, table.header, mapping);
    status(
      $("preset-status"),
      "De koppeling is bewaard voor deze registratie (alleen kolomnamen, geen gegevens).",
      "ok",
    );
  });

  // 3. Check every row.
  function check() {
    const t = /** @type {import("./file.js").Table} */ (table);
    const problems = mappingProblems(mapping);
    if (problems.length > 0) throw new PseudoformError(problems[0][1], "the mapping has a problem", "mapping");
    if (!mapping.some((m) => m.role !== UNUSED && m.role !== CLINICAL && m.role !== "optOut")) {
      throw new PseudoformError("mapping.noIdentity", "no identifying column", "mapping");
    }
    checked = checkRows(t.rows, mapping, { require: required, provider: config.provider });
    refusals = [];
    renderReport();
    return checked;
  }

  function renderReport() {
    const c = /** @type {import("./rows.js").Checked} */ (checked);
    const t = /** @type {import("./file.js").Table} */ (table);
    const refusedRows = new Set(refusals.map((p) => p.row)).size;
    status(
      $("check-summary"),
      `${t.rows.length} rijen: ${c.sendable.length} te versturen, ${c.invalid} ongeldig (niet verstuurd), ` +
        `${c.optedOut} met bezwaar (niet verstuurd)${refusedRows ? `, ${refusedRows} geweigerd bij het versturen` : ""}.`,
      "ok",
    );
    const body = /** @type {HTMLElement} */ ($("report").querySelector("tbody"));
    body.replaceChildren();
    for (const p of [...c.problems, ...refusals].slice(0, REPORT_LINES)) {
      const tr = add(body, "tr");
      add(tr, "td", String(p.row));
      add(tr, "td", reportLabel(p.field));
      add(tr, "td", p.rule);
      add(tr, "td", p.text);
    }
    $("report").hidden = c.problems.length + refusals.length === 0;
    button("download-report").hidden = c.problems.length + refusals.length === 0;
  }

  button("check").addEventListener("click", () => {
    try {
      check();
    } catch (error) {
      status($("check-summary"), say(error), "error");
    }
  });
  button("download-report").addEventListener("click", () => {
    if (!checked) return;
    download(
      "controlerapport.csv",
      new Blob([reportCsv([...checked.problems, ...refusals])], { type: "text/csv;charset=utf-8" }),
    );
  });

  // 4. Run.
  /**
   * After a delivery (done or stopped): the checkpoint's mapping and chunk
   * size hold for this file from now on, as after a reload.
   * @param {import("./checkpoint.js").Checkpoint} c
   */
  const holdTo = (c) => {
    resuming = c;
    mapping = c.mapping.map((x) => ({ ...x }));
    chunkInput.value = String(c.chunkSize);
    chunkInput.disabled = true;
    button("start").textContent = c.finished ? "Opnieuw afleveren (zelfde batches)" : "Hervatten";
    renderMapping();
  };
  const setRunning = (/** @type {boolean} */ running) => {
    button("start").disabled = running;
    button("pause").disabled = !running;
    button("cancel").disabled = !running;
    button("drop-checkpoint").disabled = running;
    for (const e of document.querySelectorAll("#mapping select, #mapping input, #check, input[name=mode]")) {
      /** @type {HTMLInputElement} */ (e).disabled = running || (Boolean(resuming) && e.closest("#mapping") !== null);
    }
    $("file").toggleAttribute("disabled", running);
  };

  button("start").addEventListener("click", async () => {
    if (!table) return;
    let c;
    try {
      c = check();
    } catch (error) {
      status(runStatus, say(error), "error");
      return;
    }
    const t = table;
    const size = Math.max(1, Math.min(MAX_CHUNK, Math.floor(Number(chunkInput.value)) || 100));
    const m = mode();
    /** @type {import("./checkpoint.js").Checkpoint} */
    const checkpoint =
      m === "deliver" && resuming
        ? { ...resuming, chunks: resuming.finished ? {} : resuming.chunks, finished: false }
        : {
            version: 1,
            file: t.hash,
            runId: newRunId(),
            chunkSize: size,
            total: c.sendable.length,
            mapping: mapping.map((x) => ({ ...x })),
            chunks: {},
            finished: false,
          };
    if (m === "deliver") {
      try {
        saveCheckpoint(registry, checkpoint);
      } catch (error) {
        status(runStatus, say(error), "error");
        return;
      }
    }
    const format = output();
    file = format === "deliver" ? undefined : new Output(format, checkpoint.mapping, registry, checkpoint.runId);
    const writing = file;
    run = new Run({
      rows: t.rows,
      sendable: c.sendable,
      checkpoint,
      registry,
      options,
      mode: m,
      batchUrl,
      onProgress: (p) => {
        progress.max = Math.max(1, p.total);
        progress.value = p.done;
        const left = p.secondsLeft === undefined ? "" : ` · nog ongeveer ${duration(p.secondsLeft)}`;
        status(
          $("progress-text"),
          `${p.done} van ${p.total} rijen · ${p.rate.toFixed(1)} rijen/s${left}${p.paused ? " · gepauzeerd" : ""}${
            p.waitingSeconds === undefined
              ? ""
              : ` · het budget van de pseudonimiseringsdienst is voor nu op: wachten (${p.waitingSeconds} s)`
          }`,
          p.done === p.total ? "done" : "busy",
        );
      },
      onWritten: writing ? (chunk, written) => writing.add(chunk, written) : undefined,
      workers,
      workerUrl,
      onLanes: (lanes) =>
        status(
          $("worker-status"),
          lanes.inPage
            ? workers === 0
              ? "De rijen worden in deze pagina zelf gepseudonimiseerd (zonder Web Workers, zo gevraagd)."
              : `Web Workers konden niet starten (${lanes.reason}); de rijen worden in deze pagina zelf gepseudonimiseerd, langzamer.`
            : `De rijen worden gepseudonimiseerd in ${lanes.workers} Web Worker${lanes.workers === 1 ? "" : "s"}.`,
          lanes.inPage ? (workers === 0 ? "page" : "fallback") : "workers",
        ),
      onRefused: (problems) => {
        refusals.push(...problems);
        renderReport();
      },
    });
    setRunning(true);
    button("download-output").hidden = true;
    status(
      runStatus,
      m === "deliver" ? "Bezig met pseudonimiseren en afleveren…" : "Bezig met pseudonimiseren…",
      "busy",
    );
    const current = run;
    try {
      await current.start();
      if (m === "deliver") holdTo(checkpoint);
      const already = Object.values(checkpoint.chunks).reduce(
        (n, ch) => n + ch.receipts.filter((r) => r[1] === "alreadyStored").length,
        0,
      );
      status(
        runStatus,
        m === "deliver"
          ? `Klaar: ${current.delivered} rijen afgeleverd${already ? ` (waarvan ${already} al eerder opgeslagen, niet dubbel)` : ""}, ` +
              `${current.refused} geweigerd, ${c.invalid} ongeldig, ${c.optedOut} met bezwaar niet verstuurd.`
          : `Klaar: ${current.delivered} rijen gepseudonimiseerd, ${current.refused} geweigerd, ${c.invalid} ongeldig, ${c.optedOut} met bezwaar niet verstuurd.`,
        "done",
      );
      if (m === "download") button("download-output").hidden = false;
    } catch (error) {
      const e = PseudoformError.from(error);
      status(
        runStatus,
        e.code === "aborted"
          ? "Afgebroken. Wat al is afgeleverd staat in het controlepunt; open hetzelfde bestand om te hervatten."
          : `Gestopt: ${say(e)} Wat al is afgeleverd staat in het controlepunt; hervatten stuurt de onderbroken batch opnieuw, de registratie slaat hem hoogstens één keer op.`,
        e.code === "aborted" ? "cancelled" : "error",
      );
      if (m === "deliver") {
        const c = loadCheckpoint(registry);
        if (c) holdTo(c);
      }
    } finally {
      setRunning(false);
      showCheckpoint();
    }
  });

  button("pause").addEventListener("click", () => {
    if (!run) return;
    if (run.paused) {
      run.resume();
      button("pause").textContent = "Pauzeren";
      status(runStatus, "Bezig…", "busy");
    } else {
      run.pause();
      button("pause").textContent = "Doorgaan";
      status(runStatus, "Gepauzeerd na de batch die nu loopt.", "paused");
    }
  });
  button("cancel").addEventListener("click", () => run?.cancel());

  button("download-output").addEventListener("click", () => {
    if (file) download(file.name, file.blob());
  });
}

main().catch((error) => {
  const element = document.getElementById("page-status");
  if (element) status(element, `Er ging iets mis: ${say(error)}`, "error");
});
