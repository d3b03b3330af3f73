//! Cases of the server-wide settings: set once, read back, one value under a race.

use std::sync::Arc;

use tokenwarden_store::Store;

use super::race::race;
use crate::fixtures::blob;

pub async fn settings_are_set_once_and_read_back(store: Arc<dyn Store>) {
    assert_eq!(store.setting("fingerprint").await.unwrap(), None);
    store.ping().await.unwrap();

    let first = store.init_setting("fingerprint", &blob(1)).await.unwrap();
    let second = store.init_setting("fingerprint", &blob(2)).await.unwrap();

    assert_eq!(first, blob(1));
    assert_eq!(second, blob(1), "init_setting never overwrites");
    assert_eq!(store.setting("fingerprint").await.unwrap(), Some(blob(1)));
    assert_eq!(store.setting("other").await.unwrap(), None);

    let racers = race(20, |i| {
        let store = store.clone();
        async move { store.init_setting("raced", &[i as u8]).await.unwrap() }
    })
    .await;
    assert!(
        racers.windows(2).all(|w| w[0] == w[1]),
        "every racer sees one value"
    );
}
