//! A fixed set of threads, each owning one SQLite connection, fed through channels.
//!
//! Why not a generic pool on `spawn_blocking`: deadpool-sqlite runs a query to recycle
//! the connection on every checkout (a second blocking hop per request), and tokio's
//! blocking pool grows to 512 threads under load, which measured half as fast. Dedicated
//! threads cost one channel send and one oneshot per query.

use std::path::Path;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};
use tokenwarden_store::StoreError;
use tokio::sync::oneshot;

use crate::convert::db;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT_MS: u32 = 10_000;

#[derive(Debug)]
pub(crate) struct Pool {
    writer: Sender<Job>,
    readers: Sender<Job>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL, not NORMAL: a rotated refresh token must survive a power cut once the
    // provider has seen it used, or the connection is lost for good.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
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

        let (writer, writer_jobs) = crossbeam_channel::unbounded::<Job>();
        spawn_worker("sqlite-writer".into(), writer_conn, writer_jobs)?;
        let (reader_tx, reader_jobs) = crossbeam_channel::unbounded::<Job>();
        for i in 0..readers.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db)?;
            configure(&conn).map_err(db)?;
            spawn_worker(format!("sqlite-reader-{i}"), conn, reader_jobs.clone())?;
        }
        Ok(Self {
            writer,
            readers: reader_tx,
        })
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

    /// Runs `f` on the writer connection (use an IMMEDIATE transaction inside, so a
    /// write lock held by another process is waited for up front, not mid-transaction).
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::run(&self.writer, f).await
    }
}
