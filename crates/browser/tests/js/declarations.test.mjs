// The declarations of the built package say what its modules export: every
// runtime export of index.js is declared in index.d.ts and every declared
// value is exported; the generated constants.d.ts declares the values that
// constants.js holds. (tsc checks the code against the declared types:
// crates/browser/js/tsconfig.json.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const PKG = join(fileURLToPath(new URL("../../../..", import.meta.url)), "www", "pkg");

/** The checker's view of one declaration file of the package. */
function declarations(file) {
  const path = join(PKG, file);
  const program = ts.createProgram([path], { strict: true, noEmit: true, module: ts.ModuleKind.ES2022 });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(path));
  const exports = checker.getExportsOfModule(module);
  const valueExports = exports.filter((s) => {
    const symbol = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    return symbol.flags & ts.SymbolFlags.Value;
  });
  const typeOf = (name) => {
    const symbol = exports.find((s) => s.name === name);
    return checker.getTypeOfSymbolAtLocation(symbol, symbol.valueDeclaration);
  };
  return { checker, values: valueExports.map((s) => s.name).sort(), typeOf, all: exports.map((s) => s.name) };
}

test("index.d.ts declares exactly the values index.js exports", async () => {
  const runtime = Object.keys(await import(join(PKG, "index.js"))).sort();
  const { values } = declarations("index.d.ts");
  assert.ok(runtime.length > 5, runtime.join(", "));
  assert.deepEqual(values, runtime);
});

test("constants.d.ts declares the values constants.js holds", async () => {
  const constants = await import(join(PKG, "constants.js"));
  const { checker, values, typeOf, all } = declarations("constants.d.ts");
  assert.deepEqual(values, Object.keys(constants).sort());
  for (const [name, alias] of [
    ["PSEUDONYM_TYPES", "PseudonymTypeCode"],
    ["FIELDS", "FieldName"],
  ]) {
    // A readonly tuple of string literal types.
    const declared = checker.getTypeArguments(typeOf(name)).map((t) => t.value);
    assert.deepEqual(declared, [...constants[name]], name);
    assert.ok(all.includes(alias), alias);
  }
  assert.equal(typeOf("METHOD_VERSION").value, constants.METHOD_VERSION);
});
