use rocket::{http::Status, local::asynchronous::Client};
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/health", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = app.get("/ready", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["database"].as_str(), body["queue"].as_str()),
        (Some("ok"), Some("ok"))
    );
}

#[tokio::test]
async fn unknown_routes_get_json_errors() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/api/v1/nope", "/api/v2/events"] {
        let (status, body) = app.get(path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

/// The same app through Rocket's in-process client: the builder is what `main`
/// launches, catchers included.
#[tokio::test]
async fn the_rocket_builder_serves_json_errors_in_process() {
    let app = TestApp::spawn().await;
    let built = api::startup::build(&app.settings).await.unwrap();
    let client = Client::tracked(api::rocket(
        rocket::Config::figment().merge(("log_level", "off")),
        built,
    ))
    .await
    .unwrap();
    let response = client.get("/api/v1/events/nope").dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
    let body: Value = response.into_json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let response = client
        .post("/api/v1/auth/login")
        .body("{not json")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    let body: Value = response.into_json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );

    let response = client.get("/health").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
}
