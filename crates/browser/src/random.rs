//! Secure random bytes for the blinds: in the browser the page's or worker's
//! Web Crypto `crypto.getRandomValues`, written straight into wasm memory;
//! natively (the crate's own tests and lints) the operating system's source.

/// Fills `bytes` with secure random bytes; `false` if no source is available.
#[cfg(target_arch = "wasm32")]
pub(crate) fn fill(bytes: &mut [u8]) -> bool {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// `crypto.getRandomValues(view)`; throws where there is no Web
        /// Crypto (caught: the result is an error, never a panic).
        #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
        fn get_random_values(bytes: &mut [u8]) -> Result<(), JsValue>;
    }

    get_random_values(bytes).is_ok()
}

/// Fills `bytes` with secure random bytes; `false` if no source is available.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn fill(bytes: &mut [u8]) -> bool {
    getrandom::getrandom(bytes).is_ok()
}
