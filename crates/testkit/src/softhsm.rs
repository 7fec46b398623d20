//! A real SoftHSM2 token (Debian's `softhsm2`, which `./build.sh setup`
//! installs) in a temporary token folder, for the TTP's keys on a PKCS#11
//! token ([`pseudoform_ttp::hsm`]).
//!
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module
//! is initialised, once per process: [`conf`] makes one token per process
//! and sets the variable before anything opens the module. Tests share the
//! token and keep to their own key labels ([`config_for`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pseudoform_ttp::hsm::HsmConfig;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's label.
pub const TOKEN: &str = "pseudoform-tests";
/// The token's user PIN.
pub const PIN: &str = "4821-test-pin-7730";

/// The SoftHSM2 configuration file of this process, its token made and
/// `SOFTHSM2_CONF` set; children given `SOFTHSM2_CONF` see the same token.
pub fn conf() -> &'static Path {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        assert!(
            Path::new(MODULE).exists() && has_command("softhsm2-util"),
            "SoftHSM2 is missing: ./build.sh setup installs it (Debian package softhsm2)"
        );
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::create_dir(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN])
            .args(["--so-pin", "so-pin-test-1234"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::env::set_var("SOFTHSM2_CONF", &conf);
        conf
    })
}

fn has_command(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The `[hsm]` of a test named `test`: the token of [`conf`], a PIN file
/// (owner-only) written into `dir`, the labels `{test}-master` and
/// `{test}-signing`.
pub fn config_for(dir: &Path, test: &str) -> HsmConfig {
    conf();
    let pin_file = dir.join("hsm.pin");
    if !pin_file.exists() {
        pseudoform_protocol::secret_file::create(&pin_file, format!("{PIN}\n").as_bytes()).unwrap();
    }
    HsmConfig {
        module: MODULE.into(),
        token_label: TOKEN.into(),
        pin_file: Some(pin_file),
        master_key_label: format!("{test}-master"),
        signing_key_label: format!("{test}-signing"),
    }
}

/// The test TTP's configuration text ([`crate::ttp::config_text`]) with
/// `hsm` as its `[hsm]` instead of the key file and the PEM.
pub fn on_token(text: &str, hsm: &HsmConfig) -> String {
    let text = text
        .replace("master_key_file = \"master.key\"\n", "")
        .replace("signing_key = \"signing.pem\"\n", "");
    assert!(!text.contains("master_key_file") && !text.contains("signing_key ="));
    format!(
        "{text}\n[hsm]\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\npin_file = \"hsm.pin\"\nmaster_key_label = \"{}\"\nsigning_key_label = \"{}\"\n",
        hsm.master_key_label, hsm.signing_key_label
    )
}
