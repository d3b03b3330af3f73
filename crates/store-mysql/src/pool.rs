//! Getting a pooled connection, running one statement on its own, and running a write
//! transaction again when InnoDB rolled it back over a deadlock or a lock wait timeout.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params};
use rand::Rng;
use tokenwarden_store::StoreError;

use crate::MysqlStore;
use crate::convert::{db, is_transient};

/// How often a transaction is run when InnoDB keeps choosing it as a deadlock victim
/// (or it keeps timing out on a lock) before the error goes to the caller.
pub(crate) const ATTEMPTS: u32 = 8;

/// Runs `$body` in a write transaction on `$store`'s pool, commits it, and runs it all
/// again (with a short random pause) when InnoDB rolled it back over a deadlock or a
/// lock wait timeout. The body is a block that evaluates to the result and may use `?`.
macro_rules! write_tx {
    ($store:expr, $tx:ident => $body:block) => {
        $crate::pool::write_tx!($store, ::mysql_async::TxOpts::default(), $tx => $body)
    };
    ($store:expr, $opts:expr, $tx:ident => $body:block) => {{
        let mut attempt = 1;
        loop {
            let outcome: Result<_, ::tokenwarden_store::StoreError> = async {
                let mut $tx = $store
                    .pool
                    .start_transaction($opts)
                    .await
                    .map_err($crate::convert::db)?;
                let value = $body;
                $tx.commit().await.map_err($crate::convert::db)?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(e) if attempt < $crate::pool::ATTEMPTS && $crate::convert::is_transient(&e) => {
                    $crate::pool::backoff(attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use write_tx;

pub(crate) async fn backoff(attempt: u32) {
    let max = 2u64 << attempt.min(8);
    let ms = rand::thread_rng().gen_range(1..=max);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl MysqlStore {
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get_conn().await.map_err(db)
    }

    /// One statement in its own (implicit) transaction; returns the rows it matched.
    pub(crate) async fn exec(&self, sql: &str, p: Params) -> Result<u64, StoreError> {
        let mut attempt = 1;
        loop {
            let outcome = async {
                let mut conn = self.conn().await?;
                conn.exec_drop(sql, p.clone()).await.map_err(db)?;
                Ok(conn.affected_rows())
            }
            .await;
            match outcome {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }
}
