//! A fixed set of threads, each owning one SQLite connection, fed through channels.
//!
//! Why not a generic pool on `spawn_blocking`: deadpool-sqlite runs a query to recycle
//! the connection on every checkout (a second blocking hop per request), and tokio's
//! blocking pool grows to 512 threads under load, which measured half as fast. Dedicated
//! threads cost one channel send and one oneshot per query.
//!
//! The writer group-commits: it takes every write queued while the previous commit
//! ran, runs each in a savepoint of one `BEGIN IMMEDIATE` transaction and commits once
//! (one fsync for the lot). A write whose own work fails is
//! rolled back to its savepoint alone; no caller hears of its write before the commit
//! that made it durable, and if that commit fails, every write of the batch fails.
//! Writes must therefore open their transactions with [`Connection::savepoint`], which
//! nests inside the batch (and is a transaction of its own outside one).
//!
//! Durability: a batch commits with `synchronous = FULL` (the WAL is fsynced before
//! anyone hears of the commit) when any write in it is [`Durability::Full`]: tokens,
//! keys, vaults, audit records, everything only the server holds or that must not be
//! lost. A batch of nothing but [`Durability::Relaxed`] writes (`last_used_at`, refresh
//! leases and their release, re-encryptions the next read redoes) commits with
//! `NORMAL`: committed and visible before its callers are answered, and safe if the
//! process dies, but a power cut or kernel crash can lose the last such commits until
//! the next FULL commit or checkpoint fsyncs the WAL. Audit records stay FULL: a read is
//! answered only once its record is on disk, and the batch shares one fsync among all
//! the reads that queued during the previous one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};
use tokenwarden_store::StoreError;
use tokio::sync::oneshot;

use crate::convert::db;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;
/// A write: runs its work, and returns what to do once the batch's commit is known.
struct WriteJob {
    durability: Durability,
    run: Box<dyn FnOnce(&mut Connection) -> Deliver + Send>,
}
type Deliver = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// Whether a write's commit must reach the disk before its caller hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    Full,
    Relaxed,
}

/// The most writes one commit takes.
const MAX_BATCH: usize = 256;

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// Idle connections kept for [`Pool::read_now`]; more are opened when all are busy.
const MAX_IDLE_INLINE: usize = 8;

#[derive(Debug)]
pub(crate) struct Pool {
    writer: Sender<WriteJob>,
    readers: Sender<Job>,
    inline: InlineReaders,
}

/// Read-only connections used on the calling thread, for point reads that cost less
/// than handing them to a reader thread and waking the caller again.
struct InlineReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    configure(&conn).map_err(db)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL, not NORMAL: a rotated refresh token must survive a power cut once the
    // provider has seen it used, or the connection is lost for good. (The writer
    // lowers it for batches of relaxed writes only; see the module doc.)
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn spawn_writer(mut conn: Connection, jobs: Receiver<WriteJob>) -> Result<(), StoreError> {
    thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            // What `configure` set; the pragma runs only when a batch needs the other.
            let mut synchronous = Some(Durability::Full);
            // Ends when every sender is gone, i.e. when the store is dropped.
            while let Ok(first) = jobs.recv() {
                batch.push(first);
                while batch.len() < MAX_BATCH
                    && let Ok(next) = jobs.try_recv()
                {
                    batch.push(next);
                }
                write_batch(&mut conn, batch.drain(..), &mut synchronous);
            }
        })
        .map(|_| ())
        .map_err(StoreError::backend)
}

/// Runs `batch` in one transaction and tells each write how it ended. `synchronous`
/// is the connection's current setting (`None`: unknown, set it again).
fn write_batch(
    conn: &mut Connection,
    batch: std::vec::Drain<'_, WriteJob>,
    synchronous: &mut Option<Durability>,
) {
    let wanted = if batch
        .as_slice()
        .iter()
        .any(|j| j.durability == Durability::Full)
    {
        Durability::Full
    } else {
        Durability::Relaxed
    };
    // The setting applies to the next commit; if it cannot be set, FULL stays.
    if *synchronous != Some(wanted) {
        let value = match wanted {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        *synchronous = match conn.pragma_update(None, "synchronous", value) {
            Ok(()) => Some(wanted),
            Err(_) => conn
                .pragma_update(None, "synchronous", "FULL")
                .ok()
                .map(|()| Durability::Full),
        };
    }
    // If the transaction cannot even begin (another process held the write lock past
    // the busy timeout), each write runs on its own, its savepoint its transaction.
    let grouped = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    let mut deliveries = Vec::new();
    let mut aborted = false;
    for job in batch {
        deliveries.push((job.run)(conn));
        // Some errors (I/O, disk full) roll the whole transaction back: the writes
        // before them are gone, so the batch fails.
        aborted |= grouped && conn.is_autocommit();
    }
    let outcome: Result<(), String> = if !grouped {
        Ok(())
    } else if aborted {
        Err("the batch's transaction was rolled back".into())
    } else {
        conn.execute_batch("COMMIT").map_err(|e| e.to_string())
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for deliver in deliveries {
        deliver(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

fn spawn_worker(name: String, mut conn: Connection, jobs: Receiver<Job>) -> Result<(), StoreError> {
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            // Ends when every sender is gone, i.e. when the store is dropped.
            for job in jobs {
                job(&mut conn);
            }
        })
        .map(|_| ())
        .map_err(StoreError::backend)
}

impl Pool {
    /// Opens (creating if needed) the database, runs `init` on the writer before any
    /// reader opens (migrations), then starts `readers` reader threads.
    pub(crate) fn open(
        path: &Path,
        readers: usize,
        init: impl FnOnce(&mut Connection) -> Result<(), StoreError>,
    ) -> Result<Self, StoreError> {
        let mut writer_conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        configure(&writer_conn).map_err(db)?;
        let mode: String = writer_conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "journal_mode is {mode}, WAL required"
            )));
        }
        init(&mut writer_conn)?;

        let (writer, writer_jobs) = crossbeam_channel::unbounded::<WriteJob>();
        spawn_writer(writer_conn, writer_jobs)?;
        let (reader_tx, reader_jobs) = crossbeam_channel::unbounded::<Job>();
        for i in 0..readers.max(1) {
            let conn = open_reader(path)?;
            spawn_worker(format!("sqlite-reader-{i}"), conn, reader_jobs.clone())?;
        }
        Ok(Self {
            writer,
            readers: reader_tx,
            inline: InlineReaders {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            },
        })
    }

    /// Runs a point read (a few rows found through an index) right here, on the
    /// caller's thread. Such a read takes microseconds from SQLite's page cache, less
    /// than the two thread wake-ups of [`Pool::read`], which measured as the larger
    /// part of a token read's cost. A WAL reader never waits for the writer, so this
    /// blocks the async worker no longer than the read itself. Anything that may scan
    /// (lists, exports) goes through [`Pool::read`].
    pub(crate) fn read_now<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = || self.inline.idle.lock().unwrap_or_else(|e| e.into_inner());
        let taken = idle().pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => open_reader(&self.inline.path)?,
        };
        let result = f(&mut conn);
        let mut idle = idle();
        if idle.len() < MAX_IDLE_INLINE {
            idle.push(conn);
        }
        result
    }

    async fn run<T: Send + 'static>(
        queue: &Sender<Job>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (client disconnected); the work is done
            // either way and a write stays atomic.
            let _ = tx.send(f(conn));
        });
        queue
            .send(job)
            .map_err(|_| StoreError::Corrupt("database threads stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Corrupt("database thread died".into()))?
    }

    /// Runs a read on one of the reader connections.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::run(&self.readers, f).await
    }

    /// Runs `f` on the writer connection, inside the transaction of the writer's
    /// current batch (open transactions with [`Connection::savepoint`]); answers once
    /// that transaction has committed and reached the disk.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_with(Durability::Full, f).await
    }

    /// As [`Pool::write`], for writes a power cut may undo (see the module doc).
    pub(crate) async fn write_relaxed<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_with(Durability::Relaxed, f).await
    }

    async fn write_with<T: Send + 'static>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let run: Box<dyn FnOnce(&mut Connection) -> Deliver + Send> = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |committed: Result<(), &str>| {
                let answer = match committed {
                    Ok(()) => result,
                    Err(why) => Err(StoreError::backend(std::io::Error::other(format!(
                        "sqlite group commit failed: {why}"
                    )))),
                };
                // The caller may have gone away (client disconnected); the write is
                // committed or rolled back either way.
                let _ = tx.send(answer);
            })
        });
        self.writer
            .send(WriteJob { durability, run })
            .map_err(|_| StoreError::Corrupt("database threads stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Corrupt("database thread died".into()))?
    }
}
