//! Files that hold secrets (private keys, the TTP's master key, access
//! tokens): created readable by the owner only from the first byte, and
//! never over an existing file.

use std::io::Write;
use std::path::Path;

/// Creates `path` with `content`, mode 0600 on Unix; fails if it exists.
pub fn create(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_only_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("pseudoform-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        let _ = std::fs::remove_file(&path);
        create(&path, b"first").unwrap();
        assert!(create(&path, b"second").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
