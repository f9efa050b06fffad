//! The project's file-system primitives: atomic file creation, the one way every crate writes a
//! file, and the run-directory lock that keeps two runs out of one output directory.
//!
//! A file is written to a uniquely named temp file in its destination's directory (a rename is
//! atomic only within one file system), flushed to disk, then renamed over the destination; the
//! directory is synced so the rename itself survives a power cut. Readers and a crash therefore
//! see either the old file or the complete new one, never a mix, and a failed or abandoned
//! write leaves nothing behind: the temp file deletes itself when dropped.
//!
//! Built on [`tempfile`], which already gets the hard parts right: unpredictable names, creation
//! with `O_EXCL` (a symlink planted at the temp name is never followed) and retry on collision.
//! Temp names are `.<file name>.<random>.incomplete`: hidden, and ending like the Python Hub
//! client's partial downloads, so tools that clean a Hugging Face cache recognise them.
//!
//! # API
//! * [`write`]: bytes to a file.
//! * [`AtomicFile`]: a streaming writer (downloads, large exports) committed by
//!   [`AtomicFile::commit`]; dropped uncommitted, it removes its temp file.
//! * [`symlink`]: make or replace a symbolic link atomically (copying the target where the
//!   platform has no symlinks).
//! * [`RunLock`]: an exclusive lock on a run directory (`<dir>/.lock`, holding the owner's pid),
//!   held until dropped and released by the OS when the process dies, even by `kill -9`. It is
//!   the standard library's advisory file lock (`flock` on Linux), so no crate is needed.
//!   [`RunLock::sweep_temp_files`] removes the temp files a killed run left in its directory.
//! * [`sweep_temp_files`]: the same for a directory without a lock (a download cache), only
//!   for temp files old enough that no live writer can own them.
//!
//! Every function creates the destination's directory if needed. Errors are [`Error`], naming
//! the file and what was being done.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

/// A failed file operation, naming the file and what was being done to it.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} {}: {source}", path.display())]
pub struct Error {
    /// What was being done ("create directory", "write", "rename into place", ...).
    pub action: &'static str,
    /// The file or directory concerned (the destination, or the temp file where it matters).
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl Error {
    fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Error {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The temp-file suffix: files ending in it are never complete.
pub const TEMP_SUFFIX: &str = ".incomplete";

/// Writes `bytes` to `dest` atomically.
///
/// # Errors
/// [`Error`] naming `dest` (or the temp file) when a directory, the temp file, the write, the
/// sync or the rename fails; `dest` is then untouched.
pub fn write(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)
        .map_err(|e| Error::new("write", file.temp_path(), e))?;
    file.commit()
}

/// A file being written; it appears under its destination name only at [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates an empty temp file beside `dest`, creating `dest`'s directory if needed.
    ///
    /// # Errors
    /// [`Error`] when the directory or the temp file cannot be created.
    pub fn create(dest: &Path) -> Result<Self> {
        let (dir, name) = split(dest)?;
        fs::create_dir_all(&dir).map_err(|e| Error::new("create directory", &dir, e))?;
        let temp = builder(&name)
            .tempfile_in(&dir)
            .map_err(|e| Error::new("create a temp file beside", dest, e))?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_path_buf(),
        })
    }

    /// The temp file's path (for messages: it is deleted on drop).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes the data to disk and renames the temp file over the destination.
    ///
    /// # Errors
    /// [`Error`] when the sync or the rename fails; the temp file is removed and the
    /// destination untouched.
    pub fn commit(mut self) -> Result<()> {
        self.temp
            .flush()
            .map_err(|e| Error::new("write", self.temp.path(), e))?;
        // Without the sync, a power cut after the rename can leave a complete-looking empty file.
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| Error::new("sync", self.temp.path(), e))?;
        let dest = self.dest;
        self.temp
            .persist(&dest)
            .map_err(|e| Error::new("rename into place", &dest, e.error))?;
        sync_dir(&dest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

/// Makes `link` a symbolic link to `target` (as written into the link, typically relative),
/// replacing whatever `link` was, atomically. Where the platform has no symlinks, `target_abs`
/// (the same file, resolvable from here) is copied instead, as the Python Hub client does on
/// Windows without developer mode.
///
/// # Errors
/// [`Error`] naming `link` when the directory, the link (or copy) or the rename fails.
pub fn symlink(target: &Path, target_abs: &Path, link: &Path) -> Result<()> {
    let (dir, name) = split(link)?;
    fs::create_dir_all(&dir).map_err(|e| Error::new("create directory", &dir, e))?;
    let temp = builder(&name)
        .make_in(&dir, |path| {
            #[cfg(unix)]
            {
                let _ = target_abs;
                std::os::unix::fs::symlink(target, path)
            }
            #[cfg(not(unix))]
            {
                let _ = target;
                fs::copy(target_abs, path).map(|_| ())
            }
        })
        .map_err(|e| Error::new("create a link beside", link, e))?;
    temp.persist(link)
        .map_err(|e| Error::new("rename into place", link, e.error))?;
    sync_dir(link)
}

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// Why a run directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "{} is in use by another run ({}); wait for it to finish or choose another output directory",
        dir.display(),
        match pid { Some(pid) => format!("process {pid}"), None => "its pid is unknown".to_owned() }
    )]
    Held {
        /// The run directory.
        dir: PathBuf,
        /// The holder's process id, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The run directory's path is taken by something that is not a directory.
    #[error("{}: not a directory (a file is there); choose another output directory", dir.display())]
    NotADirectory {
        /// The run directory asked for.
        dir: PathBuf,
    },
    /// The directory or the lock file could not be created, read or written.
    #[error(transparent)]
    Io(#[from] Error),
}

/// An exclusive lock on a run directory, held while this value lives.
///
/// The lock is advisory: it keeps out every process that asks for it (each `imdb-lora train`),
/// not a process that writes without asking. The lock file stays after the run (removing it
/// while another process waits on it would let two runs in); its content is the last holder's
/// pid, for the message a second run gets.
#[derive(Debug)]
pub struct RunLock {
    file: fs::File,
    path: PathBuf,
}

impl RunLock {
    /// Locks `dir` (creating it if needed), or fails at once if another process holds it.
    ///
    /// # Errors
    /// [`LockError::Held`] naming the directory and the holder's pid; [`LockError::Io`] when
    /// the directory or the lock file cannot be created or written.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        if dir.exists() && !dir.is_dir() {
            return Err(LockError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        fs::create_dir_all(dir).map_err(|e| Error::new("create directory", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // A link planted at the lock's name is refused, not followed.
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = options
            .open(&path)
            .map_err(|e| Error::new("open the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be writing its pid right now: an unreadable pid is "unknown".
                let _ = io::Read::read_to_string(&mut file, &mut text);
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::new("lock", &path, e).into());
            }
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| io::Seek::rewind(&mut file))
            .and_then(|()| file.write_all(pid.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| Error::new("write the pid into", &path, e))?;
        Ok(RunLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the temp files a killed process left anywhere in the locked directory (its
    /// subdirectories included, links not followed); returns their paths.
    ///
    /// Safe without an age check because the lock is held: no other run is writing here.
    ///
    /// # Errors
    /// [`Error`] naming the directory or file that could not be listed or removed.
    pub fn sweep_temp_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut removed = Vec::new();
        sweep(dir, None, true, &mut removed)?;
        Ok(removed)
    }
}

/// Removes the temp files in `dir` (not its subdirectories) untouched for at least `min_age`:
/// for directories several processes may write at once without a lock (a download cache),
/// where a younger temp file may be another process's write in progress. Returns their paths.
///
/// # Errors
/// [`Error`] naming the directory or file that could not be listed or removed; a missing
/// directory has nothing to sweep.
pub fn sweep_temp_files(dir: &Path, min_age: Duration) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    match sweep(dir, Some(min_age), false, &mut removed) {
        Err(e) if e.path == dir && e.source.kind() == io::ErrorKind::NotFound => Ok(removed),
        other => other.map(|()| removed),
    }
}

/// Whether `name` is one of [`AtomicFile`]'s temp names (`.<file name>.<random>.incomplete`).
fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with('.') && n.ends_with(TEMP_SUFFIX))
}

fn sweep(
    dir: &Path,
    min_age: Option<Duration>,
    recurse: bool,
    removed: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::new("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::new("list", dir, e))?;
        let path = entry.path();
        // The entry's own type: a link is never followed, into a directory or to a file.
        let kind = entry
            .file_type()
            .map_err(|e| Error::new("inspect", &path, e))?;
        if kind.is_dir() {
            if recurse {
                sweep(&path, min_age, recurse, removed)?;
            }
            continue;
        }
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        if let Some(min_age) = min_age {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| Error::new("inspect", &path, e))?;
            // A clock set back makes the age unknown: keep the file.
            if modified.elapsed().map_or(true, |age| age < min_age) {
                continue;
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            // Gone meanwhile (its writer finished or cleaned up): nothing to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::new("remove the stale temp file", &path, e)),
        }
    }
    Ok(())
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first says so explicitly.
        let _ = self.file.unlock();
    }
}

/// The temp-file builder: hidden name derived from the destination's, readable like a file made
/// by `File::create` (tempfile's default is 0600; these outputs are meant to be shared, and the
/// umask still applies).
fn builder(name: &OsString) -> tempfile::Builder<'_, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(name).suffix(TEMP_SUFFIX).rand_bytes(6);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b
}

/// The destination's directory ("." for a bare name) and the temp-name prefix `.<name>.`.
fn split(dest: &Path) -> Result<(PathBuf, OsString)> {
    let Some(file_name) = dest.file_name() else {
        return Err(Error::new(
            "write",
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        ));
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut prefix = OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    Ok((dir, prefix))
}

/// Syncs the directory holding `path`, so the rename that made it survives a crash.
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::new("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(TEMP_SUFFIX))
            .collect()
    }

    #[test]
    fn write_replaces_content_creates_directories_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/out.txt");
        write(&dest, b"first").unwrap();
        write(&dest, b"second").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        assert!(leftovers(dest.parent().unwrap()).is_empty());
    }

    #[test]
    fn dropped_file_leaves_destination_untouched_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        fs::write(&dest, b"old").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"partial").unwrap();
        let temp = f.temp_path().to_path_buf();
        assert!(temp.exists());
        assert!(temp.to_string_lossy().ends_with(TEMP_SUFFIX));
        drop(f);
        assert!(!temp.exists());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_at_the_destination_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let dest = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write(&dest, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(
            !fs::symlink_metadata(&dest)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_created_with_the_umask_not_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("shared.json");
        write(&dest, b"{}").unwrap();
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        // Group/other read bits survive any usual umask (022, 002); 0600 would drop them.
        assert_ne!(mode & 0o044, 0, "mode {mode:o}");
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error_naming_it() {
        let err = write(Path::new("/"), b"x").unwrap_err();
        assert!(err.to_string().contains("names no file"), "{err}");
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"").unwrap();
        // A regular file where a directory is needed.
        let err = write(&file.join("child"), b"x").unwrap_err();
        assert!(err.to_string().contains("plain"), "{err}");
    }

    #[test]
    fn a_file_where_the_run_directory_should_be_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run");
        fs::write(&file, "x").unwrap();
        let err = RunLock::acquire(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a directory (a file is there); choose another output directory",
                file.display()
            )
        );
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_second_lock_on_a_run_directory_is_refused_naming_the_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunLock::acquire(&run).unwrap();
        assert_eq!(
            fs::read_to_string(first.path()).unwrap(),
            std::process::id().to_string()
        );
        // A second open file description conflicts even within one process.
        match RunLock::acquire(&run) {
            Err(LockError::Held { dir, pid }) => {
                assert_eq!(dir, run);
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let msg = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())) && msg.contains("run"),
            "{msg}"
        );
        drop(first);
        let again = RunLock::acquire(&run).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&victim, run.join(LOCK_FILE)).unwrap();
        let err = RunLock::acquire(&run).unwrap_err();
        assert!(matches!(err, LockError::Io(_)), "{err:?}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_replaces_an_existing_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"A").unwrap();
        fs::write(dir.path().join("b"), b"B").unwrap();
        let link = dir.path().join("snap/link");
        symlink(Path::new("../a"), &dir.path().join("a"), &link).unwrap();
        assert_eq!(fs::read(&link).unwrap(), b"A");
        symlink(Path::new("../b"), &dir.path().join("b"), &link).unwrap();
        assert_eq!(fs::read(&link).unwrap(), b"B");
        assert!(leftovers(&dir.path().join("snap")).is_empty());
    }
    /// A temp file as a process killed mid-write leaves it: [`AtomicFile`] forgotten.
    fn abandoned(dest: &Path) -> PathBuf {
        let file = AtomicFile::create(dest).unwrap();
        let (_, path) = file.temp.keep().unwrap();
        path
    }

    #[test]
    fn a_run_lock_sweeps_the_temp_files_a_killed_run_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let stale = [
            abandoned(&run.join("metrics.json")),
            abandoned(&run.join("checkpoints/last.safetensors")),
        ];
        let keep = [
            run.join("metrics.json"),
            run.join("notes.incomplete"),
            run.join("checkpoints/.hidden"),
        ];
        for k in &keep {
            fs::write(k, b"kept").unwrap();
        }
        let lock = RunLock::acquire(&run).unwrap();
        let mut removed = lock.sweep_temp_files().unwrap();
        removed.sort();
        let mut want = stale.to_vec();
        want.sort();
        assert_eq!(removed, want);
        assert!(stale.iter().all(|p| !p.exists()));
        assert!(keep.iter().all(|p| p.exists()) && lock.path().exists());
    }

    #[cfg(unix)]
    #[test]
    fn sweeping_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        let foreign = abandoned(&elsewhere.join("data.bin"));
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&elsewhere, run.join("linked")).unwrap();
        let lock = RunLock::acquire(&run).unwrap();
        assert!(lock.sweep_temp_files().unwrap().is_empty());
        assert!(foreign.exists());
    }

    #[test]
    fn an_unlocked_sweep_removes_only_temp_files_older_than_the_age_given() {
        let dir = tempfile::tempdir().unwrap();
        let (old, young) = (
            abandoned(&dir.path().join("a.bin")),
            abandoned(&dir.path().join("b.bin")),
        );
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let removed = sweep_temp_files(dir.path(), Duration::from_secs(600)).unwrap();
        assert_eq!(removed, std::slice::from_ref(&old));
        assert!(!old.exists() && young.exists());
        // Nothing to sweep where nothing was ever written.
        assert!(
            sweep_temp_files(&dir.path().join("absent"), Duration::ZERO)
                .unwrap()
                .is_empty()
        );
    }
}
