use entity::prelude::*;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::TestApp;

fn registration(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "s3cret-pass", "name": "Ada", "role": "customer"})
}

#[tokio::test]
async fn register_returns_the_user_and_stores_an_argon2id_hash() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            registration("  Ada@Example.com "),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"], "Ada@Example.com");
    assert_eq!(body["name"], "Ada");
    assert_eq!(body["role"], "customer");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(body.get("password_hash").is_none());

    let users = User::find().all(&app.db).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id.to_string(), body["id"].as_str().unwrap());
    assert!(
        users[0].password_hash.starts_with("$argon2id$"),
        "{}",
        users[0].password_hash
    );
}

#[tokio::test]
async fn emails_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post(
            "/api/v1/auth/register",
            None,
            registration("ada@example.com")
        )
        .await
        .0,
        201
    );
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            registration("ADA@example.COM"),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "email_taken");
    assert_eq!(app.count::<User>().await, 1);
}

#[tokio::test]
async fn invalid_registrations_name_every_bad_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "not-an-email", "password": "short", "name": " ", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    let details = body["error"]["details"].as_object().unwrap();
    let mut fields: Vec<_> = details.keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password", "role"]);

    let long_password = "p".repeat(129);
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "a@example.com", "password": long_password, "name": "A", "role": "customer"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["details"]["password"]
            .as_str()
            .unwrap()
            .contains("128")
    );
    assert_eq!(app.count::<User>().await, 0);
}

#[tokio::test]
async fn login_issues_a_bearer_token_and_refuses_wrong_credentials_alike() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/auth/register",
        None,
        registration("ada@example.com"),
    )
    .await;

    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ADA@example.com", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["user"]["email"], "ada@example.com");

    let wrong_password = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "wrong-pass"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bob@example.com", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(wrong_password.0, 401);
    assert_eq!(
        wrong_password, unknown_email,
        "the two failures must be indistinguishable"
    );
    assert_eq!(wrong_password.1["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn me_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    let user = app.customer().await;
    let (status, body) = app.get("/api/v1/me", Some(&user.token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], user.id.to_string());
    assert_eq!(body["email"], user.email);

    let (status, body) = app.get("/api/v1/me", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    let forged = format!("{}x", &user.token[..user.token.len() - 1]);
    for token in ["garbage", "a.b.c", forged.as_str()] {
        let (status, body) = app.get("/api/v1/me", Some(token)).await;
        assert_eq!(status, 401, "token {token:?}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let response = app
        .http
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {}", user.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn_with(|s| s.auth.token_ttl = std::time::Duration::from_secs(1)).await;
    let user = app.customer().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = app.get("/api/v1/me", Some(&user.token)).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_json_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let raw = |body: &'static str| {
        app.http
            .post(app.url("/api/v1/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        (r#"{"email": "a@example.com", "#, 400, "bad_request"),
        ("[1, 2", 400, "bad_request"),
        (
            r#"{"email": 5, "password": "s3cret-pass", "name": "A", "role": "customer"}"#,
            422,
            "validation_failed",
        ),
        (
            r#"{"email": "a@example.com", "password": "s3cret-pass", "name": "A", "role": "customer", "admin": true}"#,
            422,
            "validation_failed",
        ),
        (r#"{"email": "a@example.com"}"#, 422, "validation_failed"),
    ];
    for (body, status, code) in cases {
        let response = raw(body).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["error"]["code"], code, "{body}: {json}");
        assert!(!json["error"]["message"].as_str().unwrap().is_empty());
    }
    let oversized = format!(
        r#"{{"email": "{}@example.com", "password": "s3cret-pass", "name": "A", "role": "customer"}}"#,
        "a".repeat(70_000)
    );
    let response = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "payload_too_large");
    assert_eq!(app.count::<User>().await, 0);
}
