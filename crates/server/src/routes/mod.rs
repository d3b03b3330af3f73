//! HTTP handlers, one module per resource. Each handler authorises on its first line
//! (through its extractor), calls one service method and maps the answer.

pub mod accounts;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod connect;
pub mod connections;
pub mod links;
pub mod ops;
pub mod providers;
pub mod proxy;
pub mod vaults;
pub mod webhooks;
