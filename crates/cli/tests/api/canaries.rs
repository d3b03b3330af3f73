//! Secret canaries, in one file and one test over 500 lines because a single server
//! run must carry every secret before all of that run's traces are searched: a real
//! `tokenwarden serve` at trace level runs a whole vault life with a recognisable value
//! for every kind of secret, and none of them turns up in any log line, audit record,
//! error or other non-owner answer, or database byte, in raw, hex, base64 (both
//! alphabets, padded or not, and at every alignment inside a longer base64 text) or
//! URL-encoded form.
//!
//! Answers that hand a secret to its owner are not searched: the vault and key
//! creation answers (the key, shown once), the connect-session answer (its
//! `authorization_url` holds the state, `connect_link` the link), the link's button
//! (redirects to the provider with the state, sets the binding cookie) and the token
//! calls (the access token). They serve as evidence that the canaries really flowed.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenwarden_fake_provider::{
    ClientRegistration, EchoSecrets, FakeProvider, FakeProviderConfig,
};
use tokenwarden_testing::{Backend, TestDatabase};

use crate::canaries_support::{Canary, Recorder, count, every_form, provider_log, random_alnum};
use crate::helpers::{Auth, Body, fetch, secret_of, with_secret};
use crate::oauth_support::{CLIENT_ID, Server, follow_authorization, query_param, report, send};
use crate::processes::Process;
use crate::stolen_dump::dump;
use crate::stolen_search::{find_any, read_files};

/// In every secret the test chooses and every code and token the fake issues, and
/// nowhere else: no name, id or email of the test holds it.
const MARKER: &str = "CANARY";
const EMAIL: &str = "ada@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_secret_reaches_a_log_line_audit_record_error_body_or_database_byte() {
    let password = format!("{MARKER} pass phrase & {}", random_alnum(12));
    let wrong_password = format!("{MARKER} wrong guess = {}", random_alnum(12));
    let client_secret = format!("{MARKER}-client-secret-{}", random_alnum(16));
    let wrong_client_secret = format!("{MARKER}-wrong-client-secret-{}", random_alnum(16));
    let wrong_key_secret = format!("{MARKER}wrongKeySecret{}", random_alnum(20));
    let malformed_key = format!("twk_{MARKER}_not_a_key_{}", random_alnum(16));
    let imported_access = format!("{MARKER}-imported-access-token-{}", random_alnum(16));
    let imported_refresh = format!("{MARKER}-imported-refresh-token-{}", random_alnum(16));
    let master_key: Vec<u8> = format!("{MARKER}-master-key-{}", random_alnum(14)).into_bytes();
    assert_eq!(master_key.len(), 32);
    let master_hex: String = master_key.iter().map(|b| format!("{b:02x}")).collect();

    let mut config =
        FakeProviderConfig::with_client(ClientRegistration::new(CLIENT_ID, client_secret.clone()));
    config.secret_marker = MARKER.to_owned();
    let provider = FakeProvider::start(config).await.unwrap();
    // A careless provider: every token error quotes the secrets the request carried.
    provider.update_quirks(|q| q.echo_secrets = EchoSecrets::InDescription);
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    let mut server = Process::start_with_env(
        dir.path(),
        database.url(),
        "canary",
        "trace",
        5,
        &[("TOKENWARDEN_MASTER_KEY", master_hex.as_str())],
    )
    .await;
    let mut r = Recorder {
        server: &server,
        searched: Vec::new(),
        owner: Vec::new(),
    };
    let mut keys: Vec<(String, String)> = Vec::new();

    // Accounts: sign-up, logins right and wrong, an unknown account.
    let signup = json!({"email": EMAIL, "password": password});
    let answer = r
        .call(
            Method::POST,
            "/v1/accounts",
            Auth::None,
            Some(&signup),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let answer = r
        .call(
            Method::GET,
            "/v1/vaults",
            Auth::Basic("nobody@example.com", &wrong_password),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let vault = r
        .call(
            Method::POST,
            "/v1/vaults",
            Auth::Basic(EMAIL, &password),
            Some(&json!({"name": "team", "managed": true})),
            true,
        )
        .await
        .expect_json(StatusCode::CREATED);
    assert_eq!(vault["managed"], true, "the master key wraps the vault");
    let vault_id = vault["id"].as_str().unwrap().to_owned();
    let admin = vault["api_key"]["key"].as_str().unwrap().to_owned();
    keys.push(("admin key".into(), admin.clone()));
    let answer = r
        .call(
            Method::GET,
            "/v1/vaults",
            Auth::Basic(EMAIL, &password),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = r
        .call(
            Method::GET,
            "/v1/vaults",
            Auth::Basic(EMAIL, &wrong_password),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    // API keys: one per role, one issued with the password, one revoked.
    for role in ["connect", "read", "proxy", "admin"] {
        let created = r
            .call(
                Method::POST,
                "/v1/api-keys",
                Auth::Bearer(&admin),
                Some(&json!({"name": role, "roles": [role]})),
                true,
            )
            .await
            .expect_json(StatusCode::CREATED);
        let what = if role == "admin" {
            "second admin key".to_owned()
        } else {
            format!("{role} key")
        };
        keys.push((what, created["key"].as_str().unwrap().to_owned()));
    }
    let (connect_key, read_key, proxy_key) =
        (keys[1].1.clone(), keys[2].1.clone(), keys[3].1.clone());
    let member = r
        .call(
            Method::POST,
            &format!("/v1/vaults/{vault_id}/api-keys"),
            Auth::Basic(EMAIL, &password),
            Some(&json!({"name": "member", "roles": ["read"]})),
            true,
        )
        .await
        .expect_json(StatusCode::CREATED);
    keys.push((
        "member key".into(),
        member["key"].as_str().unwrap().to_owned(),
    ));
    let doomed = r
        .call(
            Method::POST,
            "/v1/api-keys",
            Auth::Bearer(&admin),
            Some(&json!({"name": "doomed", "roles": ["read"]})),
            true,
        )
        .await
        .expect_json(StatusCode::CREATED);
    let doomed_key = doomed["key"].as_str().unwrap().to_owned();
    keys.push(("revoked key".into(), doomed_key.clone()));
    for (what, key) in keys.clone() {
        let answer = r
            .call(Method::GET, "/v1/whoami", Auth::Bearer(&key), None, false)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.text);
    }
    let answer = r
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{}", doomed["id"].as_str().unwrap()),
            Auth::Bearer(&admin),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let wrong_key = with_secret(&admin, &wrong_key_secret);
    for key in [&doomed_key, &wrong_key, &malformed_key] {
        let answer = r
            .call(Method::GET, "/v1/whoami", Auth::Bearer(key), None, false)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer = r
        .call(
            Method::GET,
            "/v1/api-keys",
            Auth::Bearer(&admin),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);

    // The provider and an app with the client secret; a refused app with it too.
    let answer = r
        .call(
            Method::POST,
            "/v1/providers",
            Auth::Bearer(&admin),
            Some(&json!({
                "key": "fake",
                "issuer": provider.issuer(),
                "api_base_url": provider.api_base_url(),
            })),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let app = |provider: &str, secret: &str| {
        json!({
            "key": "fake",
            "provider": provider,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "scopes": ["openid", "email"],
        })
    };
    let answer = r
        .call(
            Method::POST,
            "/v1/apps",
            Auth::Bearer(&admin),
            Some(&app("no-such-provider", &client_secret)),
            false,
        )
        .await;
    assert!(answer.status.is_client_error(), "{}", answer.text);
    let answer = r
        .call(
            Method::POST,
            "/v1/apps",
            Auth::Bearer(&admin),
            Some(&app("fake", &client_secret)),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let answer = r
        .call(Method::GET, "/v1/apps", Auth::Bearer(&admin), None, false)
        .await;
    assert_eq!(answer.status, StatusCode::OK);

    // c1: a connect session finished by the browser at its authorization URL.
    let mut states = Vec::new();
    let mut links = Vec::new();
    let mut callbacks = Vec::new();
    let session = r
        .call(
            Method::POST,
            "/v1/connect-sessions",
            Auth::Bearer(&connect_key),
            Some(&json!({"app": "fake", "connection_id": "c1"})),
            true,
        )
        .await
        .expect_json(StatusCode::CREATED);
    let authorization_url = session["authorization_url"].as_str().unwrap();
    states.push(query_param(authorization_url, "state").unwrap());
    links.push(session["connect_link"].as_str().unwrap().to_owned());
    let callback = follow_authorization(r.server.http(), authorization_url).await;
    callbacks.push(callback.clone());
    let page = r
        .browse("the callback of c1", Method::GET, &callback, None, false)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let replay = r
        .browse(
            "the replayed callback of c1",
            Method::GET,
            &callback,
            None,
            false,
        )
        .await;
    assert!(replay.status.is_client_error(), "{}", replay.text);
    let status = r
        .call(
            Method::GET,
            &format!("/v1/connect-sessions/{}", session["id"].as_str().unwrap()),
            Auth::Bearer(&connect_key),
            None,
            false,
        )
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(status["status"], "completed");

    // c2: through the connect link, bound to the browser that pressed the button.
    let session = r
        .call(
            Method::POST,
            "/v1/connect-sessions",
            Auth::Bearer(&connect_key),
            Some(&json!({"app": "fake", "connection_id": "c2"})),
            true,
        )
        .await
        .expect_json(StatusCode::CREATED);
    states.push(query_param(session["authorization_url"].as_str().unwrap(), "state").unwrap());
    let link = session["connect_link"].as_str().unwrap().to_owned();
    links.push(link.clone());
    let page = r
        .browse("the connect link page", Method::GET, &link, None, false)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let form = crate::connect_links_support::page_form(&page);
    let spent = crate::connect_links_support::post_link(
        r.server.http(),
        &link,
        &[("origin", &crate::connect_links_support::origin_of(&link))],
        Some(&form.cookie),
        Some(&form.form_token),
    )
    .await;
    r.keep("the connect link button", &spent, true);
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    let cookie = spent
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let binding = cookie.split_once('=').unwrap().1.to_owned();
    let again = r
        .browse("the spent connect link", Method::POST, &link, None, false)
        .await;
    assert_eq!(again.status, StatusCode::GONE);
    let callback = follow_authorization(r.server.http(), spent.header("location").unwrap()).await;
    callbacks.push(callback.clone());
    let foreign = r
        .browse(
            "the callback of c2 without the cookie",
            Method::GET,
            &callback,
            None,
            false,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST, "{}", foreign.text);
    let page = r
        .browse(
            "the callback of c2",
            Method::GET,
            &callback,
            Some(&cookie),
            false,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let c1_grant = provider.grants().into_iter().next().unwrap();
    let c2_grant_id = provider.latest_grant().unwrap().id;
    assert_ne!(c1_grant.id, c2_grant_id);

    // Token reads, a forced refresh that rotates the refresh token, a refresh call.
    let token = |query: &str| format!("/v1/connections/c1/token{query}");
    let read = r
        .call(Method::GET, &token(""), Auth::Bearer(&read_key), None, true)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(read["access_token"], c1_grant.access_token.clone().unwrap());
    assert!(
        read["access_token"]
            .as_str()
            .unwrap()
            .starts_with(&format!("fake_at_{MARKER}_")),
        "the access token canary was handed out"
    );
    let forced = r
        .call(
            Method::GET,
            &token("?force_refresh=true"),
            Auth::Bearer(&read_key),
            None,
            true,
        )
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(forced["refreshed"], true);
    let c1_grant = provider.grant(c1_grant.id).unwrap();
    assert_eq!(
        forced["access_token"],
        c1_grant.access_token.clone().unwrap()
    );
    assert_eq!(
        c1_grant.refresh_tokens.len(),
        2,
        "the refresh token rotated"
    );
    let refreshed = r
        .call(
            Method::POST,
            "/v1/connections/c1/refresh",
            Auth::Bearer(&connect_key),
            None,
            true,
        )
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(refreshed["id"], "c1");
    assert!(refreshed.get("access_token").is_none());
    let c1_grant = provider.grant(c1_grant.id).unwrap();
    assert_eq!(c1_grant.refresh_tokens.len(), 3);

    // The proxy injects the access token; the caller sees only the upstream answer.
    let proxied = fetch(
        r.server.http(),
        Method::POST,
        &format!("{}/v1/proxy/c1/echo-body", r.server.base_url()),
        Auth::Bearer(&proxy_key),
        Some(Body::raw("text/plain", "proxied body")),
    )
    .await;
    r.keep("POST /v1/proxy/c1/echo-body", &proxied, false);
    assert_eq!(proxied.status, StatusCode::OK, "{}", proxied.text);
    assert_eq!(proxied.text, "proxied body");
    let upstream = provider.requests_to("/api/echo-body");
    assert_eq!(
        upstream.last().unwrap().header("authorization"),
        Some(format!("Bearer {}", c1_grant.access_token.clone().unwrap()).as_str())
    );
    let refused = fetch(
        r.server.http(),
        Method::GET,
        &format!("{}/v1/proxy/c1/user", r.server.base_url()),
        Auth::Bearer(&wrong_key),
        None,
    )
    .await;
    r.keep("GET /v1/proxy/c1/user with a wrong key", &refused, false);
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // An imported connection whose refresh token the provider refuses, quoting it.
    let import = |app: &str| {
        json!({
            "app": app,
            "connection_id": "imported",
            "access_token": imported_access,
            "refresh_token": imported_refresh,
            "expires_at": "2020-01-01T00:00:00Z",
        })
    };
    let answer = r
        .call(
            Method::POST,
            "/v1/connections",
            Auth::Bearer(&connect_key),
            Some(&import("no-such-app")),
            false,
        )
        .await;
    assert!(answer.status.is_client_error(), "{}", answer.text);
    let answer = r
        .call(
            Method::POST,
            "/v1/connections",
            Auth::Bearer(&connect_key),
            Some(&import("fake")),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let answer = r
        .call(
            Method::GET,
            "/v1/connections/imported/token",
            Auth::Bearer(&read_key),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.json()["code"], "needs_reauth");
    let presented: Vec<String> = provider
        .requests_to("/token")
        .iter()
        .filter_map(|t| t.form_param("refresh_token").map(str::to_owned))
        .collect();
    assert!(presented.contains(&imported_refresh), "{presented:?}");

    // A wrong client secret: the provider refuses the refresh, and its error code is
    // the request's refresh token and client secret.
    let patch = |secret: &str| json!({"client_secret": secret});
    let answer = r
        .call(
            Method::PATCH,
            "/v1/apps/fake",
            Auth::Bearer(&admin),
            Some(&patch(&wrong_client_secret)),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let c2_token = |query: &str| format!("/v1/connections/c2/token{query}");
    provider.update_quirks(|q| q.echo_secrets = EchoSecrets::AsErrorCode);
    let answer = r
        .call(
            Method::GET,
            &c2_token("?force_refresh=true"),
            Auth::Bearer(&read_key),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.text);
    provider.update_quirks(|q| q.echo_secrets = EchoSecrets::InDescription);
    let sent_wrong_secret = provider_log(&provider);
    assert!(
        every_form(wrong_client_secret.as_bytes())
            .iter()
            .any(|(_, f)| count(&sent_wrong_secret, f) > 0),
        "the wrong client secret reached the provider"
    );
    let answer = r
        .call(
            Method::PATCH,
            "/v1/apps/fake",
            Auth::Bearer(&admin),
            Some(&patch(&client_secret)),
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let answer = r
        .call(
            Method::GET,
            &c2_token("?force_refresh=true"),
            Auth::Bearer(&read_key),
            None,
            true,
        )
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(answer["refreshed"], true);

    // The user revokes c2 at the provider: the refresh fails with invalid_grant.
    assert!(provider.revoke_grant(c2_grant_id));
    let answer = r
        .call(
            Method::GET,
            &c2_token("?force_refresh=true"),
            Auth::Bearer(&read_key),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.json()["code"], "needs_reauth");

    // Metadata, then deleting c1 revokes it at the provider.
    for path in [
        "/v1/connections",
        "/v1/connections/c1",
        "/v1/connections/c2",
    ] {
        let answer = r
            .call(Method::GET, path, Auth::Bearer(&read_key), None, false)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let revocations = provider.revocations();
    let answer = r
        .call(
            Method::DELETE,
            "/v1/connections/c1",
            Auth::Bearer(&connect_key),
            None,
            false,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    assert!(provider.revocations() > revocations);
    let revoked: Vec<String> = provider
        .requests_to("/revoke")
        .iter()
        .filter_map(|t| t.form_param("token").map(str::to_owned))
        .collect();
    assert!(
        revoked.contains(&c1_grant.refresh_token.clone().unwrap()),
        "{revoked:?}"
    );

    let audit = send(
        r.server,
        Method::GET,
        "/v1/audit?limit=1000",
        Auth::Bearer(&admin),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let audit_records = audit.as_array().unwrap().len();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(audit_records >= 20, "{actions:?}");
    let mut searched = std::mem::take(&mut r.searched);
    let mut owner = std::mem::take(&mut r.owner);
    searched.push((
        PathBuf::from("GET /v1/audit"),
        audit.to_string().into_bytes(),
    ));

    // The database, while the server runs and at rest.
    let sqlite = database.sqlite_path().map(std::path::Path::to_path_buf);
    let mut db_places = sqlite.as_deref().map(read_files).unwrap_or_default();
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    match &sqlite {
        Some(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
            drop(db);
            db_places.extend(read_files(path));
        }
        None => {
            let backend = database.backend();
            assert_ne!(backend, Backend::Sqlite);
            db_places.push((
                PathBuf::from(format!("{backend:?} dump")),
                dump(backend, database.url()),
            ));
        }
    }
    let log = server.output();
    let log_lines = log.lines().count();
    assert!(
        log.lines().any(|l| l.contains("TRACE")),
        "the log level took effect"
    );
    assert!(log.contains("connection connected"), "the log is the run's");
    let db_files = db_places.len();
    searched.push((PathBuf::from("log (stdout + stderr)"), log.into_bytes()));
    searched.extend(db_places);
    owner.push((
        PathBuf::from("the provider's request log"),
        provider_log(&provider),
    ));
    for (i, url) in callbacks.iter().enumerate() {
        owner.push((
            PathBuf::from(format!("callback URL {i}")),
            url.clone().into_bytes(),
        ));
    }

    // The canaries: chosen by the test, issued by the server, issued by the provider.
    let mut canaries: Vec<Canary> = Vec::new();
    let mut add = |what: String, value: &[u8]| {
        canaries.push(Canary {
            what,
            value: value.to_vec(),
        })
    };
    add("account password".into(), password.as_bytes());
    add("wrong password".into(), wrong_password.as_bytes());
    add("master key".into(), &master_key);
    add("client secret".into(), client_secret.as_bytes());
    add("wrong client secret".into(), wrong_client_secret.as_bytes());
    add("wrong API key".into(), wrong_key.as_bytes());
    add("wrong API key's secret".into(), wrong_key_secret.as_bytes());
    add("malformed API key".into(), malformed_key.as_bytes());
    add("imported access token".into(), imported_access.as_bytes());
    add("imported refresh token".into(), imported_refresh.as_bytes());
    for (what, key) in &keys {
        add(what.clone(), key.as_bytes());
        add(format!("{what}'s secret"), secret_of(key).as_bytes());
    }
    for (i, state) in states.iter().enumerate() {
        add(format!("state {i}"), state.as_bytes());
    }
    for (i, link) in links.iter().enumerate() {
        let token = link.rsplit('/').next().unwrap();
        add(format!("connect link {i}"), token.as_bytes());
    }
    add("binding cookie".into(), binding.as_bytes());
    let verifiers: Vec<String> = provider
        .requests_to("/token")
        .iter()
        .filter_map(|t| t.form_param("code_verifier").map(str::to_owned))
        .collect();
    assert_eq!(verifiers.len(), 2, "one PKCE verifier per code exchange");
    for (i, verifier) in verifiers.iter().enumerate() {
        add(format!("PKCE verifier {i}"), verifier.as_bytes());
    }
    let mut issued = 0;
    for grant in provider.grants() {
        let g = grant.id.0;
        add(format!("code of grant {g}"), grant.code.as_bytes());
        for (i, t) in grant.access_tokens.iter().enumerate() {
            add(format!("access token {i} of grant {g}"), t.as_bytes());
        }
        for (i, t) in grant.refresh_tokens.iter().enumerate() {
            add(format!("refresh token {i} of grant {g}"), t.as_bytes());
        }
        for (i, t) in grant.id_tokens.iter().enumerate() {
            add(format!("id_token {i} of grant {g}"), t.as_bytes());
        }
        issued += grant.access_tokens.len() + grant.refresh_tokens.len();
    }
    assert!(issued >= 10, "{issued} tokens issued");

    // The search works: the key ids and connection ids are in the places searched.
    let ids: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|(what, key)| (format!("id of the {what}"), key.as_bytes()[4..20].to_vec()))
        .collect();
    assert!(
        !find_any(&searched, &ids).is_empty(),
        "the search finds nothing at all"
    );

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, c) in canaries.iter().enumerate() {
        for (form, bytes) in every_form(&c.value) {
            assert!(bytes.len() >= 16, "{} as {form} is too short", c.what);
            needles.push((format!("#{i} {} as {form}", c.what), bytes));
        }
    }
    let found = find_any(&searched, &needles);
    let seen = find_any(&owner, &needles);
    let marker_hits: Vec<String> = searched
        .iter()
        .filter(|(_, bytes)| count(bytes, MARKER.as_bytes()) > 0)
        .map(|(place, bytes)| {
            format!(
                "{} x {MARKER} in {}",
                count(bytes, MARKER.as_bytes()),
                place.display()
            )
        })
        .collect();
    let marker_seen: usize = owner
        .iter()
        .map(|(_, bytes)| count(bytes, MARKER.as_bytes()))
        .sum();

    let places = searched.len();
    let answers = places - 2 - db_files;
    for (i, c) in canaries.iter().enumerate() {
        let tag = format!("#{i} {} as ", c.what);
        report(format_args!(
            "canary {:<34} {:>2} forms x {places} places ({log_lines} log lines, \
             {audit_records} audit records, {db_files} database files, {answers} answers): \
             {} hits; legitimately seen {} times",
            c.what,
            every_form(&c.value).len(),
            found.iter().filter(|f| f.starts_with(&tag)).count(),
            seen.iter().filter(|f| f.starts_with(&tag)).count(),
        ));
    }
    report(format_args!(
        "canaries: {} secrets, {} needles, {} bytes searched; the marker {MARKER} \
         {} times in owner answers and the provider's log, {} places hold it otherwise",
        canaries.len(),
        needles.len(),
        searched.iter().map(|(_, b)| b.len()).sum::<usize>(),
        marker_seen,
        marker_hits.len(),
    ));
    let flowed = |what: &str| {
        seen.iter().any(|s| {
            s.split_once(' ')
                .unwrap()
                .1
                .starts_with(&format!("{what} as "))
        })
    };
    for what in [
        "access token 0 of grant 1",
        "refresh token 0 of grant 1",
        "state 0",
        "connect link 1",
        "binding cookie",
        "PKCE verifier 0",
        "code of grant 1",
        "client secret",
        "wrong client secret",
        "imported refresh token",
    ] {
        assert!(
            flowed(what),
            "{what} never reached its owner or the provider"
        );
    }
    assert!(marker_seen >= 10);
    assert_eq!(found, Vec::<String>::new(), "canaries leaked");
    assert_eq!(marker_hits, Vec::<String>::new(), "the marker leaked");
}
