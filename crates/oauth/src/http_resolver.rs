//! Name resolution under the outbound policy: the injectable [`HostResolver`], and the
//! resolver installed in the client that refuses a name with any non-global address,
//! checking the address that is connected to rather than one looked up earlier.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::http_address::is_global;

/// A lookup's answer.
pub type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Looks up a host name's addresses. The default is the system resolver; tests inject
/// their own to point names at addresses of their choice.
pub trait HostResolver: Send + Sync + fmt::Debug {
    /// Every address `host` resolves to.
    fn lookup(&self, host: &str) -> Lookup;
}

/// The resolver installed when loopback is not allowed (or a lookup is injected): a
/// name that resolves to any non-global address is refused as a whole, so that a
/// rebinding name cannot make us connect to its private half.
#[derive(Debug)]
pub(crate) struct PolicyResolver {
    pub(crate) lookup: Option<Arc<dyn HostResolver>>,
    pub(crate) global_only: bool,
}

/// The resolver's refusal, recognised again in `TransportError::from_reqwest`.
#[derive(Debug, thiserror::Error)]
#[error("host `{0}` resolves to a non-global address")]
struct BlockedHost(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        let global_only = self.global_only;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = match lookup {
                Some(lookup) => lookup
                    .lookup(&host)
                    .await?
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            if global_only && addrs.iter().any(|addr| !is_global(addr.ip())) {
                tracing::warn!(http.host = %host, "refused a provider host that resolves to a non-global address");
                return Err(Box::new(BlockedHost(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub(crate) fn find_blocked_host(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<BlockedHost>() {
            return Some(blocked.0.clone());
        }
        current = e.source();
    }
    None
}
