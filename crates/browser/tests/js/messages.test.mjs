// The clinician's messages, over the core's lists as the build generated
// them (www/pkg/constants.js): every field has a Dutch and an English label,
// every rule of every field a Dutch and an English sentence; the English rule
// texts are the core's own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FIELDS, LIMITS, RULES } from "../../../../www/pkg/constants.js";
import { describeError, fieldLabels } from "../../../../www/pkg/index.js";

const LANGUAGES = ["nl", "en"];
const FALLBACK = { nl: describeError({ code: "internal" }, "nl"), en: describeError({ code: "internal" }, "en") };

test("the generated lists are not empty", () => {
  assert.ok(FIELDS.length >= 10, `${FIELDS.length} fields`);
  assert.ok(Object.keys(RULES).length >= 16, `${Object.keys(RULES).length} rules`);
});

test("every field has a label in both languages", () => {
  for (const lang of LANGUAGES) {
    const labels = fieldLabels(lang);
    assert.deepEqual(Object.keys(labels), [...FIELDS], lang);
    for (const field of FIELDS) {
      assert.ok(labels[field] && labels[field] !== field, `${lang}: no label for ${field}`);
    }
  }
  assert.notDeepEqual(fieldLabels("nl"), fieldLabels("en"));
});

test("every rule of every field has a sentence in both languages", () => {
  for (const lang of LANGUAGES) {
    const labels = fieldLabels(lang);
    const sentences = new Set();
    for (const rule of Object.keys(RULES)) {
      for (const field of FIELDS) {
        const sentence = describeError({ code: `${field}.${rule}` }, lang);
        assert.notEqual(sentence, FALLBACK[lang], `${lang}: ${field}.${rule} has no message`);
        assert.ok(sentence.startsWith(labels[field]), `${lang}: ${field}.${rule}: ${sentence}`);
        assert.doesNotMatch(sentence, /undefined/, `${lang}: ${field}.${rule}`);
        sentences.add(sentence.slice(labels[field].length));
      }
    }
    // One text per rule, not one text for all.
    assert.equal(sentences.size, Object.keys(RULES).length, lang);
  }
});

test("the English rule texts are the core's descriptions", () => {
  for (const [rule, description] of Object.entries(RULES)) {
    assert.equal(describeError({ code: `bsn.${rule}` }, "en"), `BSN: ${description}.`);
  }
});

test("the Dutch texts take their limits from the core", () => {
  assert.equal(describeError({ code: "birthDate.tooEarly" }), `Geboortedatum ligt vóór ${LIMITS.earliestBirthYear}.`);
  assert.match(describeError({ code: "houseNumber.range" }), new RegExp(`tot en met ${LIMITS.maxHouseNumber}\\)`));
});
