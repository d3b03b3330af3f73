//! Group commit of the audit records of reads (token reads, proxy calls).
//!
//! A read must not answer before its audit record is committed, but a write
//! transaction per read made the database's commit (one fsync on SQLite, one round
//! trip per statement on the servers) the cost of every read. Here the reads of one
//! process hand their records to one writer task, which commits whatever has queued
//! while the previous commit ran, in one transaction ([`Store::append_audits`]), and
//! then answers every read of the batch with the batch's outcome: no read is answered
//! before its record is durable, and when the batch fails every read in it fails.
//! There is no timer: an idle server commits a lone record at once.

use std::sync::{Arc, OnceLock};

use tokenwarden_store::{AuditStore, NewAuditRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::{ServiceError, ServiceResult};

/// Records queued beyond this make readers wait to enqueue (back-pressure).
const QUEUE: usize = 4096;
/// The most records one transaction takes.
const MAX_BATCH: usize = 512;

type Outcome = Result<(), Arc<StoreError>>;

struct Pending {
    record: NewAuditRecord,
    done: oneshot::Sender<Outcome>,
}

/// The writer task's queue, started on first use (inside the runtime that serves).
#[derive(Debug, Default)]
pub(crate) struct AuditBatcher {
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl AuditBatcher {
    /// Appends `record` with the next batch and waits for that batch's commit.
    pub(crate) async fn append(
        &self,
        store: &Arc<dyn Store>,
        record: NewAuditRecord,
    ) -> ServiceResult<()> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let store: Arc<dyn AuditStore> = store.clone();
            tokio::spawn(write_batches(store, rx));
            tx
        });
        let (done, committed) = oneshot::channel();
        queue
            .send(Pending { record, done })
            .await
            .map_err(|_| stopped())?;
        match committed.await.map_err(|_| stopped())? {
            Ok(()) => Ok(()),
            Err(e) => Err(ServiceError::internal(e)),
        }
    }
}

fn stopped() -> ServiceError {
    ServiceError::internal(std::io::Error::other("the audit writer stopped"))
}

/// Ends when every sender is gone (the services were dropped).
async fn write_batches(store: Arc<dyn AuditStore>, mut queue: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (records, waiters): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.record, p.done)).unzip();
        let size = records.len();
        let outcome = store.append_audits(records).await.map_err(Arc::new);
        if let Err(e) = &outcome {
            warn!(error = %e, batch.size = size, "an audit batch failed; its reads fail");
        }
        for waiter in waiters {
            // A reader that went away (client disconnected) needs no answer.
            let _ = waiter.send(outcome.clone());
        }
    }
}
