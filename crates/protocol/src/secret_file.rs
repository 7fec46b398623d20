//! Files that hold secrets (private keys, the TTP's master key, access
//! tokens): created readable by the owner only from the first byte, never
//! over an existing file, and read only when nobody else can read them.

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

/// Why a secret file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// Group or others may read (or write) the file: its mode is printed
    /// in octal.
    TooOpen(u32),
    /// The file could not be read.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooOpen(mode) => write!(
                f,
                "mode {mode:03o} lets group or others at a secret; make it owner-only (chmod 600)"
            ),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The mode bits of `path` that give group or others any access (Unix;
/// always 0 elsewhere).
pub fn open_bits(path: &Path) -> std::io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o077)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(0)
    }
}

/// Reads a secret file, refusing one that group or others can access.
/// The caller should keep the bytes in a `Zeroizing` buffer.
pub fn read(path: &Path) -> Result<Vec<u8>, ReadError> {
    let bits = open_bits(path).map_err(ReadError::Io)?;
    if bits != 0 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(ReadError::Io)?
                .permissions()
                .mode();
            return Err(ReadError::TooOpen(mode & 0o777));
        }
        #[cfg(not(unix))]
        return Err(ReadError::TooOpen(bits));
    }
    std::fs::read(path).map_err(ReadError::Io)
}

/// The SQLite database file at `path` and its `-wal` and `-shm` files.
pub fn database_files(path: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Makes an SQLite database owner-only before it is opened: creates it
/// empty with mode 0600 if it does not exist, and sets 0600 on the file and
/// its `-wal` and `-shm` files where group or others had access (SQLite
/// gives the `-wal` and `-shm` files it creates the database's mode).
/// Returns the files it had to restrict.
pub fn restrict_database(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut restricted = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for file in database_files(path) {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                restricted.push(file);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(restricted)
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
        assert_eq!(read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // A secret others may read is refused, naming the mode only.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = read(&path).unwrap_err();
            assert!(matches!(e, ReadError::TooOpen(0o640)), "{e}");
            assert!(e.to_string().contains("640"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
