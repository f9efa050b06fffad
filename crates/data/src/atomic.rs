//! Atomic file creation: write to a uniquely named temp file in the destination's directory, then
//! rename it into place, so readers (and a crash) never see a half-written file under the final name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temp files of concurrent writers inside one process; the pid separates processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp-file name next to `dest`. It must be in the same directory: `rename` is only atomic within
/// one filesystem. The name ends in `.incomplete` like the Python hub client's partial downloads, so
/// tools that clean the cache recognise it.
pub(crate) fn temp_path_for(dest: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!("{name}.{}-{n}.incomplete", std::process::id()))
}

/// Create the parent directory of `path` (if it has one).
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    Ok(())
}

/// A temp file that deletes itself on drop unless [`TempFile::persist`] moved it into place. This is
/// what guarantees that every early return (a failed read, a checksum mismatch) leaves no partial file.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Create an empty temp file beside `dest` (creating `dest`'s directory if needed).
    pub(crate) fn beside(dest: &Path) -> Result<Self> {
        create_parent(dest)?;
        let path = temp_path_for(dest);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create temp file", &path, e))?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// The temp file's path (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Append bytes.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        match self.file.as_mut() {
            Some(f) => f
                .write_all(bytes)
                .map_err(|e| Error::io("write", &self.path, e)),
            None => Err(Error::io(
                "write",
                &self.path,
                std::io::Error::other("temp file already closed"),
            )),
        }
    }

    /// Flush to disk and rename to `dest`. A crash before the rename leaves only the temp file.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        if let Some(f) = self.file.take() {
            // fsync before rename: otherwise a power cut can leave a complete-looking, empty file.
            f.sync_all().map_err(|e| Error::io("sync", &self.path, e))?;
        }
        fs::rename(&self.path, dest)
            .map_err(|e| Error::io(format!("rename to {} from", dest.display()), &self.path, e))?;
        // Disarm the drop guard: the temp name no longer exists.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            // Best effort: the error that made us drop is the one worth reporting.
            if let Err(e) = fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not delete temp file");
            }
        }
    }
}

/// Write `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = TempFile::beside(dest)?;
    tmp.write_all(bytes)?;
    tmp.persist(dest)
}

/// Make `link` a symlink to `target` atomically (replacing whatever `link` was). On platforms without
/// symlinks the file is copied, as the Python hub client does on Windows without developer mode.
pub(crate) fn symlink_atomic(target_rel: &Path, target_abs: &Path, link: &Path) -> Result<()> {
    create_parent(link)?;
    let tmp = temp_path_for(link);
    #[cfg(unix)]
    {
        let _ = target_abs;
        std::os::unix::fs::symlink(target_rel, &tmp).map_err(|e| {
            Error::io(
                format!("create symlink to {}", target_rel.display()),
                &tmp,
                e,
            )
        })?;
    }
    #[cfg(not(unix))]
    {
        let _ = target_rel;
        fs::copy(target_abs, &tmp)
            .map_err(|e| Error::io(format!("copy {} to", target_abs.display()), &tmp, e))?;
    }
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(
            format!("rename to {} from", link.display()),
            &tmp,
            e,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".incomplete"))
            .collect()
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.txt");
        write_atomic(&dest, b"first").unwrap();
        write_atomic(&dest, b"second").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        assert!(leftovers(dest.parent().unwrap()).is_empty());
    }

    #[test]
    fn dropped_temp_file_is_deleted_and_dest_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        let mut tmp = TempFile::beside(&dest).unwrap();
        tmp.write_all(b"partial").unwrap();
        let tmp_path = tmp.path().to_path_buf();
        assert!(tmp_path.exists());
        drop(tmp);
        assert!(!tmp_path.exists());
        assert!(!dest.exists());
    }

    #[test]
    fn temp_names_are_unique() {
        let a = temp_path_for(Path::new("/x/y"));
        let b = temp_path_for(Path::new("/x/y"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x")));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_atomic_replaces_existing_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"A").unwrap();
        fs::write(dir.path().join("b"), b"B").unwrap();
        let link = dir.path().join("snap/link");
        symlink_atomic(Path::new("../a"), &dir.path().join("a"), &link).unwrap();
        assert_eq!(fs::read(&link).unwrap(), b"A");
        symlink_atomic(Path::new("../b"), &dir.path().join("b"), &link).unwrap();
        assert_eq!(fs::read(&link).unwrap(), b"B");
    }
}
