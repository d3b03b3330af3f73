"""Sets up the data the API fuzzing needs, over HTTP, on a `tokenwarden serve --dev`.

Reads the --dev banner (its account and admin key), then makes a read key and a proxy
key, connects `me` through the built-in demo provider (a real authorization-code flow:
consent page, approve, callback) and imports a connection `imported`, so that the
fuzzed operations have real ids to hit. Prints shell assignments for the calling script.
Only the standard library and `requests` (a schemathesis dependency) are used.
"""

import re
import shlex
import sys
from urllib.parse import urljoin

import requests


def fail(message: str) -> None:
    sys.exit(f"schemathesis setup: {message}")


def expect(response: requests.Response, status: int, what: str) -> requests.Response:
    if response.status_code != status:
        fail(f"{what}: expected {status}, got {response.status_code}: {response.text[:500]}")
    return response


def main() -> None:
    base, banner_path = sys.argv[1], sys.argv[2]
    banner = open(banner_path, encoding="utf-8").read()
    key_match = re.search(r"admin key\s+(twk_\S+)", banner)
    account_match = re.search(r"account\s+(\S+) / (\S+)", banner)
    if not key_match or not account_match:
        fail(f"no admin key or account in the --dev banner:\n{banner}")
    admin = key_match.group(1)
    email, password = account_match.group(1), account_match.group(2)
    http = requests.Session()
    bearer = {"Authorization": f"Bearer {admin}"}

    keys = {}
    for role in ("read", "proxy"):
        answer = expect(
            http.post(f"{base}/v1/api-keys", headers=bearer, json={"name": f"fuzz-{role}", "roles": [role]}),
            201,
            f"creating the {role} key",
        )
        keys[role] = answer.json()["key"]

    # A real connect flow at the demo provider, as a browser would run it.
    session = expect(
        http.post(f"{base}/v1/connect-sessions", headers=bearer, json={"app": "demo", "connection_id": "me"}),
        201,
        "starting a connect session",
    ).json()
    consent = expect(
        http.get(session["authorization_url"], allow_redirects=False), 200, "the consent page"
    )
    action = re.search(r'<form method="post" action="([^"]+)"', consent.text)
    consent_id = re.search(r'name="consent" value="([^"]+)"', consent.text)
    if not action or not consent_id:
        fail("no consent form on the demo provider's page")
    approved = http.post(
        urljoin(session["authorization_url"], action.group(1).replace("&amp;", "&")),
        data={"consent": consent_id.group(1), "decision": "approve"},
        allow_redirects=False,
    )
    if approved.status_code not in (302, 303):
        fail(f"approving: expected a redirect, got {approved.status_code}: {approved.text[:500]}")
    page = expect(
        http.get(approved.headers["location"], allow_redirects=False), 200, "the callback"
    )
    if "<code>me</code>" not in page.text:
        fail(f"the callback page does not name the connection: {page.text[:500]}")

    expect(
        http.post(
            f"{base}/v1/connections",
            headers=bearer,
            json={
                "app": "demo",
                "connection_id": "imported",
                "access_token": "fuzz-imported-access-token",
                "refresh_token": "fuzz-imported-refresh-token",
                "scopes": ["openid"],
            },
        ),
        201,
        "importing a connection",
    )
    expect(http.get(f"{base}/v1/connections/me/token", headers={"Authorization": f"Bearer {keys['read']}"}), 200, "reading me's token")

    for name, value in (
        ("TW_ADMIN_KEY", admin),
        ("TW_READ_KEY", keys["read"]),
        ("TW_PROXY_KEY", keys["proxy"]),
        ("TW_EMAIL", email),
        ("TW_PASSWORD", password),
    ):
        print(f"{name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
