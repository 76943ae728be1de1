//! The dashboard on the admin port: the embedded files with their content types and
//! security headers, `/ui/config.json` naming the gRPC port on the page's host, and
//! nothing else under `/ui`. (The page itself is driven in a real browser by
//! `dashboard/tests/browser.test.ts`.)

use crate::support::{Backend, TestApp, browser, spawn_app};

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self' http://{grpc}; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    browser()
        .get(format!("http://{}{path}", app.admin))
        .send()
        .await
        .unwrap()
}

/// The headers every `/ui` answer carries, whatever its status.
fn assert_secured(app: &TestApp, response: &reqwest::Response) {
    let headers = response.headers();
    let grpc = format!("127.0.0.1:{}", app.addr.port());
    assert_eq!(
        headers["content-security-policy"],
        POLICY.replace("{grpc}", &grpc),
        "{}",
        response.url()
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("cache-control"), "{}", response.url());
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy() {
    let app = spawn_app(Backend::Memory).await;
    for (path, content_type, cache, marker) in [
        (
            "/ui",
            "text/html; charset=utf-8",
            "no-store",
            "<script src=\"/ui/app.js\" defer></script>",
        ),
        (
            "/ui/",
            "text/html; charset=utf-8",
            "no-store",
            "<link rel=\"stylesheet\" href=\"/ui/app.css\">",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "no-cache",
            "/ui/config.json",
        ),
        (
            "/ui/app.css",
            "text/css; charset=utf-8",
            "no-cache",
            "--accent",
        ),
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_secured(&app, &response);
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(response.headers()["cache-control"], cache, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{path} lacks {marker:?}");
    }
    // The page runs no inline script and no inline style: the policy would refuse them.
    let page = get(&app, "/ui").await.text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains("style="));
}

#[tokio::test]
async fn the_script_is_revalidated_by_its_etag() {
    let app = spawn_app(Backend::Memory).await;
    let first = get(&app, "/ui/app.js").await;
    let etag = first.headers()["etag"].clone();
    let again = browser()
        .get(format!("http://{}/ui/app.js", app.admin))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_secured(&app, &again);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = browser()
        .get(format!("http://{}/ui/app.js", app.admin))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn config_names_the_grpc_port_on_the_pages_host() {
    let app = spawn_app(Backend::Memory).await;
    let response = get(&app, "/ui/config.json").await;
    assert_eq!(response.status(), 200);
    assert_secured(&app, &response);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let config: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        config,
        serde_json::json!({ "grpcUrl": format!("http://127.0.0.1:{}", app.addr.port()) })
    );

    // Loaded through another name for the host, the page calls the gRPC port by it too.
    let named = browser()
        .get(format!("http://{}/ui/config.json", app.admin))
        .header("host", format!("dash.herald.test:{}", app.admin.port()))
        .send()
        .await
        .unwrap();
    let expected = format!("http://dash.herald.test:{}", app.addr.port());
    assert!(
        named.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&format!("connect-src 'self' {expected};"))
    );
    let config: serde_json::Value = serde_json::from_slice(&named.bytes().await.unwrap()).unwrap();
    assert_eq!(config["grpcUrl"], expected.as_str());

    // A host that is not one names nothing: the policy then allows the page's origin only.
    let odd = browser()
        .get(format!("http://{}/ui/config.json", app.admin))
        .header("host", "user@evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);
    assert!(
        odd.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self';")
    );
}

#[tokio::test]
async fn unknown_dashboard_paths_are_not_found() {
    let app = spawn_app(Backend::Memory).await;
    for path in [
        "/ui/index.html",
        "/ui/app.js.map",
        "/ui/../metrics",
        "/ui/config.json/x",
        "/ui/nested/app.js",
    ] {
        let response = get(&app, path).await;
        // `/ui/../metrics` is normalised by the client to `/metrics`, which exists.
        if response.url().path() == "/metrics" {
            continue;
        }
        assert_eq!(response.status(), 404, "{path}");
        assert_secured(&app, &response);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    let posted = browser()
        .post(format!("http://{}/ui/config.json", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    assert_secured(&app, &posted);
    // The admin port's other paths keep their own answers.
    assert_eq!(get(&app, "/livez").await.text().await.unwrap(), "ok");
}
