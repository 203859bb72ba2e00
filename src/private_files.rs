//! Files and folders that only the service's own user may read.
//!
//! The data folder holds the database (password hashes, study subjects),
//! the generated signing secrets and, with the file mail transport, mails
//! with live password-reset links. Everything the service creates there is
//! therefore mode 0600 (folders 0700), whatever the umask of the shell or
//! unit that started it.
//!
//! Two layers, because neither alone is enough:
//! - [`restrict_new_files_to_owner`] sets the process umask, which also
//!   covers files that libraries create on their own: SQLite's `-wal` and
//!   `-shm` files and the file `VACUUM INTO` writes, and any file a later
//!   change adds without thinking of modes.
//! - The helpers below create each file and folder we open ourselves with
//!   an explicit mode, so the code is right where it stands, also when the
//!   library runs inside another process (the tests) that keeps its umask.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of every file the service creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the service creates.
pub const DIR_MODE: u32 = 0o700;

/// Makes every file and folder this process creates from now on private
/// to its user (umask 077). The umask is shared by all threads of the
/// process, so one call, first thing in `main` before any file is
/// created, covers everything.
pub fn restrict_new_files_to_owner() {
    #[cfg(unix)]
    #[allow(unsafe_code)]
    // SAFETY: umask only replaces the process's file-creation mask; it
    // cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` and any missing parents with mode 0700. Existing folders
/// are left as they are: an operator may have chosen their mode.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)
}

/// Options that create a new file (never an existing one) with mode 0600
/// and open it for writing.
pub fn new_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates `path` (mode 0600); fails with `AlreadyExists` if it exists.
pub fn create_new(path: &Path) -> io::Result<File> {
    new_file_options().open(path)
}

/// Whether users other than the owner may read or enter `path`. Always
/// false where there are no Unix modes.
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The explicit modes hold whatever the umask; the tests of the binary
    /// (tests/integration/cli/private_files.rs) check the umask layer.
    #[test]
    fn created_folders_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&root.path().join("a")), DIR_MODE);
        assert_eq!(mode(&nested), DIR_MODE);
        let file = nested.join("f");
        create_new(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        assert!(!readable_by_others(&file));
        assert_eq!(
            create_new(&file).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_others(&file));
    }
}
