//! Login flooding, on both stores: attempts over the per-account or per-address limit get 429
//! with `Retry-After` and the error body before any password is hashed; a flood of wrong
//! passwords at one account does not slow another account's login; and password hashes beyond
//! the concurrency bound wait, then get 503 with `Retry-After`, never a 500.
//!
//! Every request of these tests comes from 127.0.0.1, so each test turns off the limit it does
//! not test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventshop_tests::api::{Answer, TestApi};
use eventshop_tests::TestStore;
use eventstore_config::Settings;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

async fn login(api: &TestApi, email: &str, password: &str) -> Answer {
    api.post(
        "/api/v1/sessions",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

fn retry_after(answer: &Answer) -> u64 {
    answer
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", answer.headers))
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds")
}

/// The shortest of `n` correct logins of `account` (each must succeed).
async fn quickest_login(
    api: &TestApi,
    account: &eventshop_tests::api::Account,
    n: usize,
) -> Duration {
    let mut quickest = Duration::MAX;
    for _ in 0..n {
        let started = Instant::now();
        let answer = login(api, &account.email, &account.password).await;
        quickest = quickest.min(started.elapsed());
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    quickest
}

fn settings(per_account: u32, per_address: u32) -> Settings {
    Settings {
        login_attempts_per_account_per_minute: per_account,
        login_attempts_per_address_per_minute: per_address,
        ..Settings::default()
    }
}

async fn given_an_account_at_its_limit_when_it_is_tried_again_then_429_with_retry_after(
    test: TestStore,
) {
    let api = TestApi::start(test).await;
    let ann = api.register("customer").await;
    let bob = api.register("customer").await;
    for _ in 0..3 {
        let wrong = login(&api, &ann.email, "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    // Even the right password waits now, however the e-mail is spelled.
    for email in [ann.email.clone(), format!(" {} ", ann.email.to_uppercase())] {
        let limited = login(&api, &email, &ann.password).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.body
        );
        let (message, field) = limited.error();
        assert!(message.contains("too many login attempts"), "{message}");
        assert_eq!(field.as_deref(), Some("email"));
        assert!((1..=60).contains(&retry_after(&limited)));
    }
    // Another account is not limited.
    let other = login(&api, &bob.email, &bob.password).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
}

async fn given_an_address_at_its_limit_when_it_tries_any_account_then_429_with_retry_after(
    test: TestStore,
) {
    let api = TestApi::start(test).await;
    let ann = api.register("customer").await;
    for n in 0..3 {
        let wrong = login(&api, &format!("nobody{n}@example.com"), "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    let limited = login(&api, &ann.email, &ann.password).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    let (message, field) = limited.error();
    assert!(message.contains("from this address"), "{message}");
    assert_eq!(field, None);
    assert!((1..=60).contains(&retry_after(&limited)));
}

async fn given_one_account_flooded_with_wrong_passwords_then_another_logs_in_quickly(
    test: TestStore,
) {
    let api = Arc::new(TestApi::start(test).await);
    let victim = api.register("customer").await;
    let other = api.register("customer").await;
    // The quickest of a few logins: the machine's other load adds noise, not a trend.
    let baseline_time = quickest_login(&api, &other, 2).await;

    let stop = Arc::new(AtomicBool::new(false));
    let flood = (0..64).map(|_| {
        let (api, stop, victim) = (api.clone(), stop.clone(), victim.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                answers.push(login(&api, &victim.email, "wrong password!").await);
                // 64 × 5 attempts a second: ten times what one hashing slot can serve (the
                // flooders share the test's cores with the server, so a tighter loop would
                // measure the load generator, not the server).
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answers
        })
    });
    let flood: Vec<_> = flood.collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let during_time = quickest_login(&api, &other, 3).await;
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = join_all(flood)
        .await
        .into_iter()
        .flat_map(|task| task.expect("flood task"))
        .collect();

    // Unlimited, each login would wait behind about 64 hashes.
    assert!(
        during_time < (baseline_time * 8).max(Duration::from_secs(1)),
        "a login took {during_time:?} during the flood, {baseline_time:?} before it"
    );
    let hashed = answers
        .iter()
        .filter(|a| a.status == StatusCode::UNAUTHORIZED)
        .count();
    let limited: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        hashed + limited.len(),
        answers.len(),
        "every flooding attempt is a 401 or a 429"
    );
    assert!(hashed <= 6, "{hashed} wrong passwords were checked");
    assert!(!limited.is_empty());
    for answer in limited {
        assert!(retry_after(answer) >= 1);
    }
}

async fn given_more_registrations_than_hashing_slots_then_the_excess_gets_503_with_retry_after(
    test: TestStore,
) {
    let api = TestApi::start(test).await;
    let answers = join_all((0..8).map(|n| {
        api.post(
            "/api/v1/accounts",
            None,
            json!({"email": format!("r{n}-{}@example.com", uuid::Uuid::new_v4().simple()),
                   "password": "correct horse battery", "name": "R"}),
        )
    }))
    .await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let busy: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(created + busy.len(), 8, "{answers:?}");
    assert!(created >= 1 && !busy.is_empty(), "{answers:?}");
    for answer in busy {
        assert_eq!(retry_after(answer), 1);
        assert!(answer.error().0.contains("busy"), "{}", answer.body);
    }
}

macro_rules! on_both_stores {
    ($($test:ident($settings:expr)),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(TestStore::postgres_with($settings).await).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(TestStore::sqlite_with($settings).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    given_an_account_at_its_limit_when_it_is_tried_again_then_429_with_retry_after(settings(3, 0)),
    given_an_address_at_its_limit_when_it_tries_any_account_then_429_with_retry_after(settings(
        0, 3
    )),
    given_one_account_flooded_with_wrong_passwords_then_another_logs_in_quickly(settings(5, 0)),
    given_more_registrations_than_hashing_slots_then_the_excess_gets_503_with_retry_after(
        Settings {
            password_hash_concurrency: 1,
            password_hash_wait_ms: 0,
            ..Settings::default()
        }
    ),
);
