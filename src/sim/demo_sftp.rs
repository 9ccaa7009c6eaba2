//! The demo instance's `sftp` subsystem, which `scp` (SFTP mode, the default since OpenSSH 9)
//! and `sftp` ask for; without it a newcomer's first file copy hangs. Served by russh-sftp.
//!
//! Files live in one directory of the demo's state dir that stands for the demo user's home.
//! Clients see it as `/`, and no path leads out of it: `..` stops at the root, as in a chroot,
//! and the subsystem never creates symlinks. The root itself cannot be removed or renamed.
//! Everything is bounded: open handles per session, bytes per read, entries per listing.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Open files and directories one sftp session may hold at once.
const MAX_HANDLES: usize = 64;
/// Largest read answered at once; clients re-request the rest of a short read.
const MAX_READ: u32 = 64 * 1024;
/// Directory entries per `readdir` answer.
const DIR_CHUNK: usize = 128;
/// Entries a listing holds; a larger directory is listed in part (the demo home is small).
const MAX_DIR_ENTRIES: usize = 10_000;

/// Maps client paths into the root directory.
#[derive(Debug, Clone)]
pub struct Jail {
    root: PathBuf,
}

impl Jail {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The path's components after resolving `.` and `..` lexically, relative to `/` (a
    /// relative path starts at the root, which is the user's home).
    fn components(path: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                p => out.push(p),
            }
        }
        out
    }

    /// What the client sees: an absolute, normalised path.
    pub fn virtual_path(path: &str) -> String {
        format!("/{}", Self::components(path).join("/"))
    }

    /// Where the path lives on this host, and whether it is the root itself.
    pub fn host_path(&self, path: &str) -> (PathBuf, bool) {
        let parts = Self::components(path);
        let is_root = parts.is_empty();
        (
            parts.iter().fold(self.root.clone(), |p, c| p.join(c)),
            is_root,
        )
    }

    /// The host path of anything but the root (which must not be removed or renamed).
    fn below_root(&self, path: &str) -> Result<PathBuf, StatusReply> {
        match self.host_path(path) {
            (_, true) => Err(StatusCode::PermissionDenied.with_message("the home directory stays")),
            (p, false) => Ok(p),
        }
    }
}

/// An io error as an sftp status, with the OS message.
fn status_of(e: &io::Error) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

/// Runs blocking file-system work off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StatusReply> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| status_of(&e)),
        Err(_) => Err(StatusCode::Failure.with_message("file operation aborted")),
    }
}

/// What a handle refers to.
enum Opened {
    File(Arc<std::fs::File>),
    /// A listing not yet (fully) sent.
    Dir(Vec<File>),
}

/// One sftp session over the demo home.
pub struct DemoSftp {
    jail: Jail,
    handles: HashMap<String, Opened>,
    next_handle: u64,
}

impl DemoSftp {
    pub fn new(jail: Jail) -> Self {
        Self {
            jail,
            handles: HashMap::new(),
            next_handle: 0,
        }
    }

    fn insert(&mut self, id: u32, opened: Opened) -> Result<Handle, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message("too many open files in this session"));
        }
        self.next_handle += 1;
        let handle = format!("h{}", self.next_handle);
        self.handles.insert(handle.clone(), opened);
        Ok(Handle { id, handle })
    }

    fn file(&self, handle: &str) -> Result<Arc<std::fs::File>, StatusReply> {
        match self.handles.get(handle) {
            Some(Opened::File(f)) => Ok(f.clone()),
            _ => Err(StatusCode::Failure.with_message("not an open file handle")),
        }
    }
}

/// `std` open options for sftp flags; new files get the mode the client asked for.
fn open_options(flags: OpenFlags, attrs: &FileAttributes) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::from(flags);
    if let Some(mode) = attrs.permissions {
        o.mode(mode & 0o777);
    }
    o
}

/// Lists a directory (bounded) as sftp entries.
fn list_dir(dir: &Path) -> io::Result<Vec<File>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)?.take(MAX_DIR_ENTRIES) {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push(File::new(name, FileAttributes::from(&meta)));
    }
    Ok(files)
}

/// Applies the attributes the client set: permissions, size, access and modification times.
fn set_attrs(f: &std::fs::File, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(mode) = attrs.permissions {
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let Some(size) = attrs.size {
        f.set_len(size)?;
    }
    if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
        let at = |secs: u32| UNIX_EPOCH + Duration::from_secs(secs.into());
        let times = std::fs::FileTimes::new()
            .set_accessed(at(atime))
            .set_modified(at(mtime));
        f.set_times(times)?;
    }
    Ok(())
}

/// Reads up to `len` bytes at `offset`, fewer only at the end of the file.
fn read_at(f: &std::fs::File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len.min(MAX_READ) as usize];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match f.read_at(rest, offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

impl russh_sftp::server::Handler for DemoSftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let files = vec![File::dummy(Jail::virtual_path(&path))];
        Ok(Name { id, files })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let (p, _) = self.jail.host_path(&path);
        let meta = blocking(move || std::fs::metadata(p)).await?;
        let attrs = FileAttributes::from(&meta);
        Ok(Attrs { id, attrs })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let (p, _) = self.jail.host_path(&path);
        let meta = blocking(move || std::fs::symlink_metadata(p)).await?;
        let attrs = FileAttributes::from(&meta);
        Ok(Attrs { id, attrs })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let f = self.file(&handle)?;
        let meta = blocking(move || f.metadata()).await?;
        let attrs = FileAttributes::from(&meta);
        Ok(Attrs { id, attrs })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let (p, _) = self.jail.host_path(&filename);
        let opts = open_options(pflags, &attrs);
        let f = blocking(move || opts.open(p)).await?;
        self.insert(id, Opened::File(Arc::new(f)))
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let f = self.file(&handle)?;
        let data = blocking(move || read_at(&f, offset, len)).await?;
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let f = self.file(&handle)?;
        blocking(move || f.write_all_at(&data, offset)).await?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("no such handle")),
        }
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let (p, _) = self.jail.host_path(&path);
        blocking(move || {
            // Opened for writing only when the size changes: directories cannot be.
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(attrs.size.is_some())
                .open(p)?;
            set_attrs(&f, &attrs)
        })
        .await?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let f = self.file(&handle)?;
        blocking(move || set_attrs(&f, &attrs)).await?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let (p, _) = self.jail.host_path(&path);
        let files = blocking(move || list_dir(&p)).await?;
        self.insert(id, Opened::Dir(files))
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Opened::Dir(files)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("not an open directory handle"));
        };
        if files.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        let n = files.len().min(DIR_CHUNK);
        let files = files.drain(..n).collect();
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let p = self.jail.below_root(&filename)?;
        blocking(move || std::fs::remove_file(p)).await?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let p = self.jail.below_root(&path)?;
        let mode = attrs.permissions.map_or(0o755, |m| m & 0o777);
        blocking(move || std::fs::DirBuilder::new().mode(mode).create(p)).await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let p = self.jail.below_root(&path)?;
        blocking(move || std::fs::remove_dir(p)).await?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let from = self.jail.below_root(&oldpath)?;
        let to = self.jail.below_root(&newpath)?;
        // SFTP version 3: renaming onto an existing name fails.
        if to.symlink_metadata().is_ok() {
            return Err(StatusCode::Failure.with_message("the new name exists"));
        }
        blocking(move || std::fs::rename(from, to)).await?;
        Ok(ok(id))
    }
}

/// A channel stream whose first read error reads as end of stream from then on. russh-sftp's
/// loop retries after any error but the end of the stream, so a broken channel would spin.
pub struct EndOnError<S> {
    inner: S,
    ended: bool,
}

impl<S> EndOnError<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            ended: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for EndOnError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ended {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => {
                tracing::debug!("demo sftp: channel read failed: {e}");
                self.ended = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EndOnError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_stops_at_the_home_root() {
        assert_eq!(Jail::virtual_path("."), "/");
        assert_eq!(Jail::virtual_path(""), "/");
        assert_eq!(Jail::virtual_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(Jail::virtual_path("/a/./b/../c"), "/a/c");
        let jail = Jail::new(PathBuf::from("/srv/home"));
        assert_eq!(
            jail.host_path("/../../etc/passwd"),
            (PathBuf::from("/srv/home/etc/passwd"), false)
        );
        assert_eq!(jail.host_path("a/.."), (PathBuf::from("/srv/home"), true));
    }

    #[test]
    fn the_home_root_cannot_be_removed_or_renamed() {
        let jail = Jail::new(PathBuf::from("/srv/home"));
        assert!(jail.below_root("/..").is_err());
        assert!(jail.below_root("x/..").is_err());
        assert_eq!(
            jail.below_root("x").ok(),
            Some(PathBuf::from("/srv/home/x"))
        );
    }

    /// A reader that fails once, then would return data.
    struct FailsOnce(bool);

    impl AsyncRead for FailsOnce {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.0 {
                self.0 = true;
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            buf.put_slice(b"more");
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_failed_channel_read_ends_the_stream_for_good() {
        use tokio::io::AsyncReadExt;
        let mut r = EndOnError::new(FailsOnce(false));
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).await.unwrap(), 0);
        assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    }

    #[test]
    fn reads_are_capped_and_short_only_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 100_000]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert_eq!(read_at(&f, 0, u32::MAX).unwrap().len(), MAX_READ as usize);
        assert_eq!(read_at(&f, 99_990, 64).unwrap().len(), 10);
        assert!(read_at(&f, 100_000, 64).unwrap().is_empty());
    }
}
