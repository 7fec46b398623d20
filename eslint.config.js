// ESLint over every JS file of the repository (./build.sh lint); formatting
// is prettier's (.prettierrc.json), so only correctness rules here.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["www/pkg/", "**/target/", "node_modules/", "bench/results/"] },
  js.configs.recommended,
  {
    // The browser module and the pages: browser code.
    files: ["crates/browser/js/**/*.js", "www/**/*.js"],
    languageOptions: { globals: globals.browser },
  },
  {
    // Tests, benchmarks and this file: node code that also hands functions to
    // the browser (page.evaluate).
    files: ["**/*.mjs", "eslint.config.js"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
];
