//! Benchmark of the console's pages on a big log: p50/p95 of each page, as a signed-in admin.
//!
//! `cargo run --release -p eventshop-tests --example bench_console [-- EVENTS [REQUESTS]]`
//! (default 1,000,000 events, 50 requests per page; a fresh PostgreSQL database on the server
//! of TEST_DATABASE_URL / DATABASE_URL / 127.0.0.1:5432, dropped afterwards).
//!
//! The log: a real one written through the command bus (accounts, a product, an approved and a
//! canceled order, policies), exported, and grown to EVENTS with copied wallets
//! ([`eventshop_tests::big_log`]), each copied event acting for its own wallet's account with a
//! correlation id of its own (so actor and correlation filters are selective, as in real life),
//! loaded with the bulk import; then the read models are rebuilt and an admin registered.
//! `eventshop serve` (the release binary) runs over it; once the saga has caught up, an order
//! is placed over REST and run by the saga; then each page is requested REQUESTS times one after another, and p50/p95/max printed per page:
//! the log's first page; the log filtered by actor, by an old correlation and by event type
//! (each matching a few events at the very start of the log, the hard case for a keyset page)
//! and by the new order's correlation; a
//! page deep in the log (`before` = the middle); a time range from the first event to the middle
//! one (its newest page starts half a log down); an aggregate page (the order, and a wallet of
//! 100 versions at its last version); the order's timeline; projections; the audit filtered by
//! actor.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use eventshop_tests::big_log;
use eventshop_tests::child::Server;
use eventshop_tests::projections::run_script;
use eventshop_tests::TestStore;
use eventstore_config::transfer::{self, Line};
use eventstore_config::CommandBus;
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

// The same allocator as the eventshop binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let n: u64 = arguments
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let requests: usize = arguments
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);

    // A real log to copy from.
    let started = Instant::now();
    let seed = TestStore::postgres().await;
    let bus = CommandBus::new(seed.store.clone(), &seed.settings);
    let script = run_script(&bus).await;
    let mut exported = Vec::new();
    transfer::export_full(&seed.store, 0, &mut exported, |_| {}).await?;
    drop(seed);
    let seed_events: Vec<_> = exported
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| match serde_json::from_slice(l) {
            Ok(Line::Event(event)) => Some(event),
            _ => None,
        })
        .collect();
    // The oldest correlation: a filter on it matches events at the very start of the log.
    let oldest_correlation = seed_events
        .iter()
        .find_map(|e| e.metadata["correlation_id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("no correlation id in the seed"))?;
    let file = big_log::grow(&exported, n, |event| {
        event.metadata["actor"] = event.aggregate_id.clone().into();
        event.metadata["correlation_id"] = uuid::Uuid::new_v4().to_string().into();
        event.metadata["causation_id"] = serde_json::Value::Null;
    })?;
    let deep_wallet = {
        // The last copied wallet that got all its deposits: 100 versions.
        let text = std::str::from_utf8(&file)?;
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("\"WalletOpened\""))
            .ok_or_else(|| anyhow::anyhow!("no wallet"))?;
        let Line::Event(event) = serde_json::from_str::<Line>(line)? else {
            anyhow::bail!("not an event line");
        };
        event.aggregate_id
    };

    let target = TestStore::postgres().await;
    let imported = transfer::import(&target.store, &file[..], |_| {}).await?;
    drop(file);
    println!(
        "imported {} events in {:.1} s",
        imported.events,
        started.elapsed().as_secs_f64()
    );
    let rebuilding = Instant::now();
    projectors::rebuild(
        &target.store,
        &projectors::read_models::all(),
        10_000,
        &indicatif::ProgressBar::hidden(),
    )
    .await?;
    println!(
        "rebuilt the read models in {:.1} s",
        rebuilding.elapsed().as_secs_f64()
    );
    let (email, password) = admin(&target).await?;

    let server = Server::start(&target).await;
    let base = server.base();
    let waiting = Instant::now();
    while !eventshop_tests::saga::saga_caught_up(&target.store).await {
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(600),
            "the saga did not catch up within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "the saga caught up in {:.1} s",
        waiting.elapsed().as_secs_f64()
    );

    // An order the saga runs, placed now (its timeline and correlation are real).
    let http = reqwest::Client::new();
    let order = order(&http, &base).await?;
    let statuses = eventshop_tests::saga::settle(
        &target.store,
        std::slice::from_ref(&order),
        Duration::from_secs(60),
    )
    .await;
    anyhow::ensure!(
        statuses == [domain::order::OrderStatus::Approved],
        "the order ended {statuses:?}"
    );
    let correlation = projectors::saga::trace::order_trace(&target.store, order.parse()?)
        .await?
        .correlation_id
        .ok_or_else(|| anyhow::anyhow!("the order has no correlation id"))?;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookies = sign_in(&client, &base, &email, &password).await?;
    let middle = imported.events as i64 / 2;
    let seller = script.seller;
    let time_at = |position: i64| {
        let store = target.store.clone();
        async move {
            let (at,): (chrono::DateTime<chrono::Utc>,) = eventstore_config::Sql::new(
                "SELECT recorded_at FROM events WHERE global_position = $1",
            )
            .arg(position)
            .fetch_one(&store)
            .await?;
            anyhow::Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
    };
    let (first_time, middle_time) = (time_at(1).await?, time_at(middle).await?);
    let pages = [
        ("log, first page", "/console/log".to_owned()),
        ("log by actor", format!("/console/log?actor={seller}")),
        (
            "log by correlation",
            format!("/console/log?correlation_id={correlation}"),
        ),
        (
            "log by old correlation",
            format!("/console/log?correlation_id={oldest_correlation}"),
        ),
        (
            "log by event type",
            "/console/log?event_type=OrderApproved".to_owned(),
        ),
        ("log, a deep page", format!("/console/log?before={middle}")),
        (
            "log, a time range ending mid-log",
            format!("/console/log?from={first_time}&to={middle_time}"),
        ),
        (
            "aggregate: order",
            format!("/console/aggregates/order/{order}"),
        ),
        (
            "aggregate: wallet v100",
            format!("/console/aggregates/wallet/{deep_wallet}"),
        ),
        ("order timeline", format!("/console/orders/{order}")),
        ("projections", "/console/projections".to_owned()),
        ("audit by actor", format!("/console/audit?actor={seller}")),
    ];
    println!(
        "\neventshop console pages: PostgreSQL, {} events, {requests} requests per page, one at a time",
        imported.events
    );
    for (name, path) in pages {
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header(COOKIE, &cookies)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            latencies.push(t.elapsed());
            anyhow::ensure!(status == StatusCode::OK, "{path}: {status}");
        }
        latencies.sort();
        let at = |q: f64| {
            latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<24} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms",
            ms(at(0.50)),
            ms(at(0.95)),
            ms(*latencies.last().expect("latencies"))
        );
    }
    server.stop().await;
    Ok(())
}

/// A seller with a product, a customer with money, and the customer's order of one; its id.
async fn order(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let seller = register(http, base, "seller").await?;
    let customer = register(http, base, "customer").await?;
    let product = post(
        http,
        base,
        "/api/v1/products",
        &seller.1,
        json!({"name": "Teapot", "description": "Blue", "price": 1_500, "currency": "EUR",
               "stock": 5}),
    )
    .await?;
    post(
        http,
        base,
        &format!("/api/v1/accounts/{}/deposits", customer.0),
        &customer.1,
        json!({"amount": 10_000, "currency": "EUR"}),
    )
    .await?;
    let placed = post(
        http,
        base,
        "/api/v1/orders",
        &customer.1,
        json!({"items": [{"product_id": product["product_id"], "quantity": 1}],
               "currency": "EUR"}),
    )
    .await?;
    placed["order_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no order id in {placed}"))
}

/// Registers an account with `role` over REST; its id and access token.
async fn register(
    http: &reqwest::Client,
    base: &str,
    role: &str,
) -> anyhow::Result<(String, String)> {
    let email = format!("{role}-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "correct horse battery", "name": "Bench",
                      "role": role});
    let answer = post(http, base, "/api/v1/accounts", "", body).await?;
    let field = |name: &str| {
        answer[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no {name} in {answer}"))
    };
    Ok((field("account_id")?, field("access_token")?))
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = http.post(format!("{base}{path}")).json(&body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {answer}");
    Ok(answer)
}

/// Registers an admin the way `eventshop accounts create-admin` does; its e-mail and password.
async fn admin(test: &TestStore) -> anyhow::Result<(String, String)> {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "admin password 1".to_owned();
    let app = command_api::build(test.settings.clone(), test.store.clone()).await?;
    application::accounts::register(
        app.state().app(),
        &application::Origin::default(),
        application::accounts::Registration {
            email: domain::Email::parse(&email)?,
            name: domain::Name::parse("Admin")?,
            password: password.clone(),
            role: domain::account::Role::Admin,
        },
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("register the admin: {e}"))?;
    Ok((email, password))
}

/// Signs in through the login form (with its CSRF token, if it has one); the `Cookie` header
/// of the session.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let mut jar = HashMap::new();
    let page = client.get(format!("{base}/console/login")).send().await?;
    keep_cookies(&mut jar, page.headers());
    let html = page.text().await?;
    let mut form = vec![
        ("email", email.to_owned()),
        ("password", password.to_owned()),
    ];
    if let Some(csrf) = hidden_value(&html, "csrf") {
        form.push(("csrf", csrf));
    }
    let answer = client
        .post(format!("{base}/console/login"))
        .header(COOKIE, cookie_header(&jar))
        .form(&form)
        .send()
        .await?;
    anyhow::ensure!(
        answer.status() == StatusCode::SEE_OTHER,
        "signing in answered {}",
        answer.status()
    );
    keep_cookies(&mut jar, answer.headers());
    anyhow::ensure!(jar.contains_key("eventshop_console"), "no session cookie");
    Ok(cookie_header(&jar))
}

fn keep_cookies(jar: &mut HashMap<String, String>, headers: &HeaderMap) {
    for value in headers.get_all(SET_COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        let pair = value.split(';').next().unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=') {
            jar.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
}

fn cookie_header(jar: &HashMap<String, String>) -> String {
    jar.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value of the hidden input `name` in `html`, if there is one.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let value = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(value.to_owned())
}
