//! Cases of the copy between backends: pages in key order, rows inserted as read, the
//! audit sequence carried on.

use std::sync::Arc;

use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::SERVER_CHAIN;
use tokenwarden_store::copy;
use tokenwarden_store::{KeySlot, Store};

use crate::fixtures::{account, audit, blob, rng, t0, vault};

fn column(table: &copy::CopyTable, name: &str) -> usize {
    table.columns.iter().position(|c| *c == name).unwrap()
}

fn table(name: &str) -> &'static copy::CopyTable {
    copy::COPY_TABLES.iter().find(|t| t.name == name).unwrap()
}

pub async fn copy_pages_in_key_order_and_inserts_rows_as_read(store: Arc<dyn Store>) {
    let owner = account("owner@example.com");
    store.create_account(owner.clone()).await.unwrap();
    let mut ids = Vec::new();
    for managed in [true, false, true] {
        let v = vault(&owner.id, managed);
        ids.push(v.vault.id.as_str().to_owned());
        store.create_vault(v).await.unwrap();
    }
    ids.sort();
    let vaults = table("vaults");

    // Paged two at a time, after the last key of the previous page.
    let first = store.copy_page(vaults, None, 2).await.unwrap();
    let rest = store
        .copy_page(vaults, first.last().cloned(), 2)
        .await
        .unwrap();
    let paged: Vec<_> = first.iter().chain(&rest).map(|r| r[0].clone()).collect();
    let expected: Vec<_> = ids
        .iter()
        .map(|i| copy::RawValue::Text(i.clone()))
        .collect();
    assert_eq!(paged, expected);
    let row = &first[0];
    assert_eq!(row.len(), vaults.columns.len());
    assert!(matches!(
        row[column(vaults, "managed")],
        copy::RawValue::Int(0 | 1)
    ));
    assert_eq!(
        row[column(vaults, "created_at")],
        copy::RawValue::Int(t0().timestamp_millis())
    );
    assert_eq!(
        row[column(vaults, "sealing_private_key")],
        copy::RawValue::Bytes(blob(6))
    );

    // A row written back under another id reads back the same.
    let managed_row = first
        .iter()
        .chain(&rest)
        .find(|r| r[column(vaults, "managed")] == copy::RawValue::Int(1))
        .unwrap();
    let copy_id = VaultId::generate(&mut rng());
    let mut copied = managed_row.clone();
    copied[0] = copy::RawValue::Text(copy_id.as_str().to_owned());
    store.copy_insert(vaults, vec![copied]).await.unwrap();
    let got = store.vault(&copy_id).await.unwrap().unwrap();
    assert!(got.managed);
    assert_eq!(got.master_slot, Some(KeySlot::new(blob(7))));
    assert_eq!(got.dek_key_id, u32::MAX);
    assert_eq!(got.created_at, t0());

    // Audit records copied with their seq: after copy_finish, new appends follow them.
    let log = table("audit_log");
    let records = store.copy_page(log, None, 100).await.unwrap();
    let seq = column(log, "seq");
    let top = records
        .iter()
        .map(|r| match r[seq] {
            copy::RawValue::Int(n) => n,
            _ => panic!("seq is an integer"),
        })
        .max()
        .unwrap();
    let mut moved = records[0].clone();
    moved[seq] = copy::RawValue::Int(top + 1000);
    moved[column(log, "id")] =
        copy::RawValue::Text(AuditId::generate(&mut rng()).as_str().to_owned());
    store.copy_insert(log, vec![moved]).await.unwrap();
    store.copy_finish().await.unwrap();
    let next = audit(None, "after.copy");
    store.append_audit(next.clone()).await.unwrap();
    let server = store.audit_chain(SERVER_CHAIN, 0, 10).await.unwrap();
    let appended = server.iter().find(|r| r.record.id == next.id).unwrap();
    assert!(appended.record.seq > top + 1000);
}
