//! Integration tests of the HTTP API (the "foundation" and "OAuth connect flow and token
//! lifecycle" issues): the real server on a random port against a fresh SQLite file,
//! driven with reqwest, and the fake OAuth provider over real HTTP; start-up refusals,
//! replicas and crashes through the real binary.
//!
//! The modules are `cfg(test)` so that clippy's `allow-*-in-tests` settings cover the
//! helpers too, not only the `#[test]` functions.

#[cfg(test)]
mod accounts;
#[cfg(test)]
mod api_keys;
#[cfg(test)]
mod api_keys_authority;
#[cfg(test)]
mod api_keys_revocation;
#[cfg(test)]
mod audit;
#[cfg(test)]
mod audit_trail;
#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod bad_input_keys;
#[cfg(test)]
mod bad_input_support;
#[cfg(test)]
mod canaries;
#[cfg(test)]
mod canaries_support;
#[cfg(test)]
mod catalog;
#[cfg(test)]
mod catalog_api;
#[cfg(test)]
mod catalog_cli;
#[cfg(test)]
mod catalog_support;
#[cfg(test)]
mod connect_links;
#[cfg(test)]
mod connect_links_csrf;
#[cfg(test)]
mod connect_links_support;
#[cfg(test)]
mod connection_lifecycle;
#[cfg(test)]
mod copy;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod hardening;
#[cfg(test)]
mod helpers;
#[cfg(test)]
mod hygiene;
#[cfg(test)]
mod lifecycle;
#[cfg(test)]
mod lifecycle_processes;
#[cfg(test)]
mod lifecycle_support;
#[cfg(test)]
mod login_timing;
#[cfg(test)]
mod oauth_flow;
#[cfg(test)]
mod oauth_flow_refusals;
#[cfg(test)]
mod oauth_flow_support;
#[cfg(test)]
mod oauth_support;
#[cfg(test)]
mod operations;
#[cfg(test)]
mod processes;
#[cfg(test)]
mod providers_apps;
#[cfg(test)]
mod proxy_access;
#[cfg(test)]
mod proxy_bodies;
#[cfg(test)]
mod proxy_forwarding;
#[cfg(test)]
mod proxy_ssrf;
#[cfg(test)]
mod proxy_support;
#[cfg(test)]
mod proxy_upstream;
#[cfg(test)]
mod refresh;
#[cfg(test)]
mod refresh_retry;
#[cfg(test)]
mod refresher;
#[cfg(test)]
mod replicas;
#[cfg(test)]
mod review_fixes;
#[cfg(test)]
mod role_matrix;
#[cfg(test)]
mod startup;
#[cfg(test)]
mod stolen_database;
#[cfg(test)]
mod stolen_database_support;
#[cfg(test)]
mod stolen_dump;
#[cfg(test)]
mod stolen_search;
#[cfg(test)]
mod unauthorized;
#[cfg(test)]
mod vaults;
#[cfg(test)]
mod webhook_receiver;
#[cfg(test)]
mod webhooks;
