//! Abuse limits (429 `rate_limited` with `Retry-After`) and the client address.

use std::time::Duration;

use api::http::rate_limit::{Limit, RateLimits};
use serde_json::json;

use crate::helpers::TestApp;

fn limits(
    auth_per_ip: u32,
    auth_per_account: u32,
    bookings: u32,
    trust_forwarded_for: bool,
) -> RateLimits {
    let per_hour = |max| Limit {
        max,
        window: Duration::from_secs(3600),
    };
    RateLimits {
        enabled: true,
        auth_per_ip: per_hour(auth_per_ip),
        auth_per_account: per_hour(auth_per_account),
        bookings_per_customer: per_hour(bookings),
        trust_forwarded_for,
        ..RateLimits::off()
    }
}

async fn login(app: &TestApp, email: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "wrong password"}));
    if let Some(ip) = forwarded_for {
        request = request.header("X-Forwarded-For", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn logins_are_limited_per_account() {
    let app = TestApp::spawn_with(|s| s.rate_limits = limits(100, 3, 100, false)).await;
    for _ in 0..3 {
        assert_eq!(login(&app, "Ann@Example.com", None).await.status(), 401);
    }
    let refused = login(&app, "ann@example.com ", None).await;
    assert_eq!(
        refused.status(),
        429,
        "the same account however it is written"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        login(&app, "bob@example.com", None).await.status(),
        401,
        "other accounts are unaffected"
    );
}

#[tokio::test]
async fn registrations_and_logins_are_limited_per_address_which_is_not_taken_from_headers() {
    let app = TestApp::spawn_with(|s| s.rate_limits = limits(3, 100, 100, false)).await;
    for i in 0..3 {
        let spoofed = format!("10.0.0.{i}");
        assert_eq!(
            login(&app, &format!("user{i}@example.com"), Some(&spoofed))
                .await
                .status(),
            401
        );
    }
    // Untrusted X-Forwarded-For changes nothing: it is still the same client.
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "new@example.com", "password": "correct horse", "name": "New", "role": "customer"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        app.count::<entity::prelude::User>().await,
        0,
        "a refused registration writes nothing"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let app = TestApp::spawn_with(|s| s.rate_limits = limits(2, 100, 100, true)).await;
    // The proxy appends the real client last; what the client sent before is ignored.
    assert_eq!(
        login(&app, "a@example.com", Some("6.6.6.6, 203.0.113.7"))
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&app, "b@example.com", Some("7.7.7.7, 203.0.113.7"))
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&app, "c@example.com", Some("8.8.8.8, 203.0.113.7"))
            .await
            .status(),
        429
    );
    assert_eq!(
        login(&app, "d@example.com", Some("203.0.113.8"))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn bookings_are_limited_per_customer() {
    let app = TestApp::spawn_with(|s| s.rate_limits = limits(100, 100, 2, false)).await;
    let organizer = app.organizer().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let event = app.event(&organizer, 100).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(app.book(&ann, id, 1).await.0, 201);
    assert_eq!(app.book(&ann, id, 1).await.0, 201);
    let (status, body) = app.book(&ann, id, 1).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(app.book(&bob, id, 1).await.0, 201);
    assert_eq!(app.assert_ticket_invariant(id).await.available_tickets, 97);
}

/// Failed logins count per account and address: a guesser locks only
/// themselves out, the owner logs in from elsewhere; a looser ceiling per
/// account holds against guessing from many addresses; successes count for
/// nothing; an IPv6 /64 is one client.
#[tokio::test]
async fn a_guesser_cannot_lock_the_owner_out() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimits {
            auth_per_account_total: Limit {
                max: 5,
                window: Duration::from_secs(3600),
            },
            ..limits(100, 3, 100, true)
        }
    })
    .await;
    let owner = app.customer().await;
    let login_as = |password: &'static str, from: &'static str| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", from)
            .json(&json!({"email": owner.email, "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login_as("wrong guess", "6.6.6.6").await.unwrap().status(),
            401
        );
    }
    assert_eq!(
        login_as("wrong guess", "6.6.6.6").await.unwrap().status(),
        429
    );
    assert_eq!(
        login_as("correct horse", "6.6.6.6").await.unwrap().status(),
        429,
        "the guesser's address is out, right password or not"
    );
    for _ in 0..4 {
        assert_eq!(
            login_as("correct horse", "7.7.7.7").await.unwrap().status(),
            200,
            "the owner elsewhere is not locked out, and successes do not count"
        );
    }
    // Guesses from many addresses: the account's own ceiling (5 failures).
    for from in ["8.8.8.1", "8.8.8.2"] {
        assert_eq!(login_as("wrong guess", from).await.unwrap().status(), 401);
    }
    assert_eq!(
        login_as("wrong guess", "8.8.8.3").await.unwrap().status(),
        429
    );

    // One /64 is one client for the per-address limit.
    let app = TestApp::spawn_with(|s| s.rate_limits = limits(2, 100, 100, true)).await;
    for (i, from) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .iter()
        .enumerate()
    {
        let status = login(&app, &format!("user{i}@example.com"), Some(from))
            .await
            .status();
        assert_eq!(status, if i < 2 { 401 } else { 429 }, "{from}");
    }
    assert_eq!(
        login(&app, "other@example.com", Some("2001:db8:1:3::1"))
            .await
            .status(),
        401,
        "the next /64 is another client"
    );
}
