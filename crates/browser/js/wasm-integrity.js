// The Subresource Integrity hash of pseudoform_bg.wasm. This file is a
// placeholder: `./build.sh build` writes the real hash into www/pkg/, and
// the bundle's own integrity hash then covers it.
export const WASM_INTEGRITY = "";
