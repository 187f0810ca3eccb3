//! Files daisi writes as root: never through a link an unprivileged user
//! placed, never readable by others.
//!
//! [`write_atomic`] writes beside the target in a new file of a random
//! name created with `O_EXCL` (a symlink or file planted at a predictable
//! `*.tmp` name is never followed or reused), mode 0640, then renames it
//! over the target: a reader never sees half a file. Directories daisi
//! creates are 0750 ([`create_dir`]).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of the files daisi creates (alerts, profiles, registries, models).
pub const FILE_MODE: u32 = 0o640;
/// Mode of the directories it creates.
pub const DIR_MODE: u32 = 0o750;

/// Replaces `path` with `bytes` atomically, through a fresh file in the
/// same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".daisi-")
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` and its missing parents, mode 0750.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Opens `path` to append, creating it with mode 0640.
pub fn append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link planted where the old code wrote its temporary file (and at
    /// the target's `.tmp`) is not followed: the file it points to is
    /// untouched, the target is written, mode 0640.
    #[test]
    fn a_planted_link_is_not_followed_and_files_are_not_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("shadow");
        std::fs::write(&victim, "root:x:0:0\n").unwrap();
        let target = dir.path().join("accepted.json");
        for name in [
            "accepted.json.tmp",
            "accepted.tmp",
            "accepted.json.json.tmp",
        ] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        // The target itself a link: replaced, not written through.
        std::fs::remove_file(&target).unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        assert!(!std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
