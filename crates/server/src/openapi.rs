//! The OpenAPI document, generated from the handlers' annotations.

use axum::routing::{MethodRouter, get};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    accounts, api_keys, apps, audit, connect, connections, links, ops, providers, proxy, vaults,
    webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenwarden",
        description = "A self-hosted OAuth 2.0 credential vault. Errors are RFC 9457 problem+json documents with a stable `code`. This document is the full HTTP contract; docs/api.md in the tokenwarden repository is a short guide to it (conventions, roles and scopes, error codes, pagination, the connect flow, the server's settings), and docs/design.md explains the key hierarchy, the connect flow, token refresh and the audit chain these endpoints follow.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes, &ProxyOperations),
    paths(proxy::proxy),
    tags(
        (name = "accounts", description = "People who sign in with email and password"),
        (name = "vaults", description = "Vaults and their members (HTTP Basic)"),
        (name = "api-keys", description = "API keys with roles and scopes (Bearer)"),
        (name = "providers", description = "OAuth providers: built in and custom"),
        (name = "apps", description = "OAuth apps: client credentials at a provider"),
        (name = "connect", description = "Connecting accounts: sessions and the OAuth callback"),
        (name = "connections", description = "Connected accounts and their tokens"),
        (name = "audit", description = "The vault's hash-chained audit log"),
        (name = "webhooks", description = "Signed event deliveries (Standard Webhooks) to the vault's endpoints"),
        (name = "proxy", description = "Provider API calls with a connection's token, which the caller never sees"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("twk_<id>_<secret><checksum>")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "account",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// One handler serves the proxy's five methods; OpenAPI wants a distinct operationId
/// for each (`proxy_get`, `proxy_post`, ...). And the proxy answers what the provider
/// answered: any status, with the provider's own content type and body. So every
/// documented status may carry either tokenwarden's problem document or the provider's
/// body (`*/*`, no schema), and any other status may come back (`default`).
struct ProxyOperations;

impl Modify for ProxyOperations {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(item) = doc.paths.paths.get_mut("/v1/proxy/{connection_id}/{path}") else {
            return;
        };
        for (method, operation) in [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("put", item.put.as_mut()),
            ("patch", item.patch.as_mut()),
            ("delete", item.delete.as_mut()),
        ] {
            let Some(operation) = operation else {
                continue;
            };
            operation.operation_id = Some(format!("proxy_{method}"));
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .content
                        .insert("*/*".to_owned(), Content::default());
                }
            }
            operation.responses.responses.insert(
                "default".to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description("The provider's answer, passed on as it is")
                        .content("*/*", Content::default())
                        .build(),
                ),
            );
        }
    }
}

/// Every documented route, with its handler.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::create_account))
        .routes(routes!(vaults::create_vault, vaults::list_vaults))
        .routes(routes!(vaults::create_vault_api_key))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(api_keys::whoami))
        .routes(routes!(
            providers::list_providers,
            providers::create_provider
        ))
        .routes(routes!(apps::create_app, apps::list_apps))
        .routes(routes!(apps::update_app, apps::delete_app))
        .routes(routes!(connect::create_connect_session))
        .routes(routes!(connect::get_connect_session))
        .routes(routes!(connect::oauth_callback))
        .routes(routes!(links::connect_link_page, links::spend_connect_link))
        .routes(routes!(
            connections::list_connections,
            connections::import_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::get_token))
        .routes(routes!(connections::refresh_connection))
        .routes(routes!(audit::list_audit))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::update_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        // The proxy's catch-all path is routed here and documented through `paths(...)`
        // above: utoipa-axum cannot express `{*path}`.
        .route("/v1/proxy/{connection_id}", proxy_methods())
        .route("/v1/proxy/{connection_id}/{*path}", proxy_methods())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

fn proxy_methods() -> MethodRouter<AppState> {
    get(proxy::proxy)
        .post(proxy::proxy)
        .put(proxy::proxy)
        .patch(proxy::proxy)
        .delete(proxy::proxy)
}

/// The OpenAPI document the server publishes at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_router().split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
