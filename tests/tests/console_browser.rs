//! The console (`/console`) and GraphiQL in a real headless Chromium, checking what a person
//! sees (element text, not HTML source). One `eventshop serve` child on a fresh PostgreSQL
//! database with an admin, a customer, a seller, a product and an approved order, and one
//! browser, serve every step; the steps run in order, each named as a sentence (`cargo test
//! -p eventshop-tests --test console_browser -- <part of a name>` runs the matching ones after
//! the shared setup). The browser cannot reach anything but 127.0.0.1 ([`browser`]).
//!
//! With `CONSOLE_SCREENSHOTS=1` each page is saved at 1280×800 to `docs/console/<page>.png`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventshop_tests::browser::Browser;
use eventshop_tests::child::Server;
use eventshop_tests::TestStore;
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An account made for the steps.
struct Person {
    id: String,
    email: String,
    password: String,
    token: String,
}

/// Everything the steps share.
struct Console {
    browser: Browser,
    server: Arc<Server>,
    http: reqwest::Client,
    admin: Person,
    customer: Person,
    seller: Person,
    order_id: String,
    _test: TestStore,
}

/// How long one step may take (a busy CI machine is slow; a step takes a few seconds).
const STEP_LIMIT: Duration = Duration::from_secs(90);

type Step = fn(Arc<Console>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! steps {
    ($($step:ident),* $(,)?) => {
        [$((
            stringify!($step),
            (|console: Arc<Console>| -> Pin<Box<dyn Future<Output = ()> + Send>> {
                Box::pin($step(console))
            }) as Step,
        )),*]
    };
}

fn main() -> ExitCode {
    let steps = steps![
        a_wrong_password_is_refused_on_the_login_page,
        an_admin_signs_in_and_sees_the_log_newest_first,
        a_signed_in_customer_is_refused_with_a_403_page,
        the_log_filters_by_actor,
        the_log_filters_by_the_correlation_of_a_row,
        an_event_made_meanwhile_appears_in_the_open_log_without_reloading,
        an_orders_aggregate_page_steps_from_version_1_to_the_last_showing_each_status,
        the_orders_timeline_shows_the_sagas_steps_in_order,
        a_projection_rebuild_started_from_the_page_finishes,
        the_audit_lists_who_did_what_and_links_its_csv,
        graphiql_loads_and_runs_a_query_with_the_network_closed_but_for_the_server,
    ];
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.iter().any(|a| a == "--list") {
        for (name, _) in steps {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // libtest's options are accepted; `--skip NAME` and `--ignored` (none is ignored here) are
    // honoured, the others (with their values) ignored.
    let only_ignored = arguments.iter().any(|a| a == "--ignored");
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--skip" => skips.extend(words.next()),
            "--test-threads" | "--format" | "--logfile" | "--color" | "-Z" => {
                words.next();
            }
            option if option.starts_with('-') => {}
            filter => filters.push(filter.to_owned()),
        }
    }
    let chosen: Vec<_> = steps
        .into_iter()
        .filter(|_| !only_ignored)
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if chosen.is_empty() {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the runtime");
    runtime.block_on(async move {
        println!("\nrunning {} tests", chosen.len());
        let started = Instant::now();
        let console = Arc::new(Console::start().await);
        println!("setup: {:.1} s", started.elapsed().as_secs_f64());
        let mut failed = Vec::new();
        for (name, step) in chosen.iter() {
            let begun = Instant::now();
            let run = tokio::spawn(tokio::time::timeout(STEP_LIMIT, step(console.clone())));
            let verdict = match run.await {
                Ok(Ok(())) => "ok",
                Ok(Err(_)) => {
                    eprintln!("{name} timed out after {STEP_LIMIT:?}");
                    "FAILED"
                }
                Err(_) => "FAILED", // the panic message is already on stderr
            };
            println!(
                "test {name} ... {verdict} ({:.1} s)",
                begun.elapsed().as_secs_f64()
            );
            if verdict != "ok" {
                failed.push(*name);
            }
        }
        let console = Arc::into_inner(console).expect("the steps are done with the console");
        console.browser.close().await;
        console.server.stop().await;
        drop(console._test);
        println!(
            "\ntest result: {}. {} passed; {} failed; finished in {:.1} s",
            if failed.is_empty() { "ok" } else { "FAILED" },
            chosen.len() - failed.len(),
            failed.len(),
            started.elapsed().as_secs_f64()
        );
        if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            eprintln!("failed: {}", failed.join(", "));
            ExitCode::FAILURE
        }
    })
}

impl Console {
    /// A fresh database with an admin, `serve` over it, a seller with a product, a customer
    /// with money and an approved order, and a browser.
    async fn start() -> Self {
        let test = TestStore::postgres().await;
        let admin = admin(&test).await;
        let (server, browser) = tokio::join!(Server::start(&test), Browser::start());
        let http = reqwest::Client::new();
        let base = server.base();
        let (customer, seller) = tokio::join!(
            register(&http, &base, "customer"),
            register(&http, &base, "seller")
        );
        let created = post(
            &http,
            &base,
            "/api/v1/products",
            &seller.token,
            json!({"name": "Teapot", "description": "Blue", "price": 1_500,
                   "currency": "EUR", "stock": 5}),
        )
        .await;
        let product_id = created["product_id"]
            .as_str()
            .expect("product id")
            .to_owned();
        post(
            &http,
            &base,
            &format!("/api/v1/accounts/{}/deposits", customer.id),
            &customer.token,
            json!({"amount": 10_000, "currency": "EUR"}),
        )
        .await;
        let placed = post(
            &http,
            &base,
            "/api/v1/orders",
            &customer.token,
            json!({"items": [{"product_id": product_id, "quantity": 2}], "currency": "EUR"}),
        )
        .await;
        let order_id = placed["order_id"].as_str().expect("order id").to_owned();
        let statuses = eventshop_tests::saga::settle(
            &test.store,
            std::slice::from_ref(&order_id),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(statuses, vec![domain::order::OrderStatus::Approved]);
        let browser = browser;
        Self {
            browser,
            server,
            http,
            admin,
            customer,
            seller,
            order_id,
            _test: test,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base())
    }

    /// Signs out of everything, then in as `person` through the login form.
    async fn sign_in(&self, person: &Person) {
        let b = &self.browser;
        b.open(&self.url("/console/login")).await;
        b.forget_cookies().await;
        b.open(&self.url("/console/login")).await;
        b.type_into("#email", &person.email).await;
        b.type_into("#password", &person.password).await;
        b.click("#sign-in").await;
    }

    /// Signs in as the admin, unless the browser already is (a sign-in hashes a password: slow).
    async fn sign_in_as_admin(&self) {
        let b = &self.browser;
        b.open(&self.url("/console/log")).await;
        let signed_in = match b.client.find(Locator::Css("#whoami")).await {
            Ok(whoami) => whoami.text().await.unwrap_or_default() == self.admin.email,
            Err(_) => false,
        };
        if !signed_in {
            self.sign_in(&self.admin).await;
        }
        let whoami = self.browser.text("#whoami").await;
        assert!(
            whoami.contains(&self.admin.email),
            "#whoami says {whoami:?}"
        );
    }

    /// A GET of `path` with the browser's console cookie (to see statuses and headers).
    async fn get_as_browser(&self, path: &str) -> reqwest::Response {
        let cookie = self
            .browser
            .cookie("eventshop_console")
            .await
            .expect("the console cookie");
        self.http
            .get(self.url(path))
            .header("cookie", format!("eventshop_console={cookie}"))
            .send()
            .await
            .expect("GET with the console cookie")
    }
}

/// The admin, registered the way `eventshop accounts create-admin` does.
async fn admin(test: &TestStore) -> Person {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "admin password 1".to_owned();
    let app = command_api::build(test.settings.clone(), test.store.clone())
        .await
        .expect("build the command API");
    let registered = application::accounts::register(
        app.state().app(),
        &application::Origin::default(),
        application::accounts::Registration {
            email: domain::Email::parse(&email).expect("email"),
            name: domain::Name::parse("Ada Admin").expect("name"),
            password: password.clone(),
            role: domain::account::Role::Admin,
        },
        None,
    )
    .await
    .expect("register the admin");
    let id = registered.account_id.to_string();
    let token = app
        .state()
        .tokens()
        .issue(&id)
        .expect("tokens")
        .access_token;
    Person {
        id,
        email,
        password,
        token,
    }
}

async fn register(http: &reqwest::Client, base: &str, role: &str) -> Person {
    let email = format!("{role}-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct horse battery".to_owned();
    let body = json!({"email": email, "password": password, "name": "Test", "role": role});
    for _ in 0..30 {
        let response = http
            .post(format!("{base}/api/v1/accounts"))
            .json(&body)
            .send()
            .await
            .expect("register");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
        let answer: Value = response.json().await.expect("JSON");
        return Person {
            id: answer["account_id"].as_str().expect("id").to_owned(),
            email,
            password,
            token: answer["access_token"].as_str().expect("token").to_owned(),
        };
    }
    panic!("registering a {role} kept answering 503");
}

async fn post(http: &reqwest::Client, base: &str, path: &str, token: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {path}: {status} {answer}");
    answer
}

fn screenshot(page: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/console"))
        .join(format!("{page}.png"))
}

/// `OrderStatus` as a person may read it (`AWAITING_PAYMENT`, `AwaitingPayment`, …).
fn normalized(status: &str) -> String {
    status
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// The steps.

async fn a_wrong_password_is_refused_on_the_login_page(c: Arc<Console>) {
    let b = &c.browser;
    b.open(&c.url("/console")).await;
    b.forget_cookies().await;
    b.open(&c.url("/console")).await;
    b.wait_for("#sign-in").await;
    assert!(
        b.here().await.ends_with("/console/login"),
        "{}",
        b.here().await
    );
    b.screenshot(&screenshot("login")).await;
    b.type_into("#email", &c.admin.email).await;
    b.type_into("#password", "not the password").await;
    b.click("#sign-in").await;
    let error = b.text("#login-error").await;
    assert!(!error.trim().is_empty(), "the login error is empty");
    assert!(
        b.all("#whoami").await.is_empty(),
        "signed in with a wrong password"
    );
}

async fn an_admin_signs_in_and_sees_the_log_newest_first(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.wait_for("#events tr.event").await;
    assert!(
        b.here().await.contains("/console/log"),
        "{}",
        b.here().await
    );
    let mut positions = Vec::new();
    for row in b.all("#events tr.event").await {
        let position = row.text().await.expect("row text");
        let shown: i64 = row
            .find(Locator::Css(".position"))
            .await
            .expect(".position")
            .text()
            .await
            .expect("text")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a row's position is not a number: {position}"));
        positions.push(shown);
    }
    assert!(
        positions.len() >= 8,
        "only {} events shown",
        positions.len()
    );
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {positions:?}"
    );
    let types = b.texts("#events tr.event .event-type").await;
    assert!(
        types.iter().any(|t| t.contains("OrderApproved")),
        "{types:?}"
    );
    for nav in ["#nav-log", "#nav-projections", "#nav-audit", "#sign-out"] {
        b.wait_for(nav).await;
    }
    b.screenshot(&screenshot("log")).await;
}

async fn a_signed_in_customer_is_refused_with_a_403_page(c: Arc<Console>) {
    c.sign_in(&c.customer).await;
    let b = &c.browser;
    let forbidden = b.text("#forbidden").await;
    assert!(
        forbidden.contains("Admins only"),
        "#forbidden says {forbidden:?}"
    );
    assert!(b.all("#events").await.is_empty(), "a customer sees the log");
    let answer = c.get_as_browser("/console/log").await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    b.wait_for("#sign-out").await;
    b.click("#sign-out").await;
    b.wait_for("#sign-in").await;
}

async fn the_log_filters_by_actor(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url("/console/log")).await;
    let everyone = actors(b).await;
    assert!(
        everyone.iter().any(|actor| actor != &c.customer.id),
        "the unfiltered log shows only the customer: {everyone:?}"
    );
    b.type_into("#log-filters [name=actor]", &c.customer.id)
        .await;
    b.click("#apply-filters").await;
    b.until("the log filtered by actor", || async {
        Ok(b.here().await.contains("actor=").then_some(()))
    })
    .await;
    let shown = actors(b).await;
    assert!(!shown.is_empty(), "nothing by the customer");
    assert!(
        shown.iter().all(|actor| actor == &c.customer.id),
        "{shown:?}"
    );
    for short in b.texts("#events tr.event .actor").await {
        assert!(
            c.customer.id.starts_with(short.trim_end_matches('…')),
            "{short:?} is not the customer {}",
            c.customer.id
        );
    }
    let types = b.texts("#events tr.event .event-type").await;
    assert!(types.iter().any(|t| t.contains("OrderPlaced")), "{types:?}");
    assert!(
        !types.iter().any(|t| t.contains("ProductCreated")),
        "the seller's product shows under the customer: {types:?}"
    );
}

async fn the_log_filters_by_the_correlation_of_a_row(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url(&format!(
        "/console/log?actor={}&event_type=OrderPlaced",
        c.customer.id
    )))
    .await;
    let correlation = metadata(b).await[0]["correlation_id"]
        .as_str()
        .expect("the order's correlation id")
        .to_owned();
    b.click("#events tr.event .correlation a").await;
    b.until("the log filtered by correlation", || async {
        Ok(b.here().await.contains("correlation_id=").then_some(()))
    })
    .await;
    let correlations: Vec<Value> = metadata(b)
        .await
        .into_iter()
        .map(|m| m["correlation_id"].clone())
        .collect();
    assert!(
        correlations
            .iter()
            .all(|shown| shown == &json!(correlation)),
        "{correlations:?} beside {correlation:?}"
    );
    let mut types = b.texts("#events tr.event .event-type").await;
    types.reverse(); // oldest first
    let aggregates = b.texts("#events tr.event .aggregate").await;
    assert_in_order(
        &types,
        &[
            "OrderPlaced",
            "StockReserved",
            "PaymentCaptured",
            "OrderApproved",
        ],
    );
    assert!(
        aggregates.iter().any(|a| a.starts_with("order"))
            && aggregates.iter().any(|a| a.starts_with("product"))
            && aggregates.iter().any(|a| a.starts_with("wallet")),
        "the order's correlation does not span order, product and wallet: {aggregates:?}"
    );
}

async fn an_event_made_meanwhile_appears_in_the_open_log_without_reloading(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url(&format!("/console/log?actor={}", c.customer.id)))
        .await;
    b.wait_for("#events tr.event").await;
    b.script("window.stillTheSamePage = true; return null;")
        .await;
    let before = b.all("#events tr.event").await.len();
    let newest_before = b.text("#events tr.event .position").await;
    // Give the page a moment to open its live stream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    post(
        &c.http,
        &c.server.base(),
        &format!("/api/v1/accounts/{}/deposits", c.customer.id),
        &c.customer.token,
        json!({"amount": 1_234, "currency": "EUR"}),
    )
    .await;
    b.until("the deposit to appear live", || async {
        let rows = b.client.find_all(Locator::Css("#events tr.event")).await?;
        Ok((rows.len() > before).then_some(()))
    })
    .await;
    let newest = b.text("#events tr.event .event-type").await;
    assert!(
        newest.contains("FundsDeposited"),
        "the newest row is {newest:?}"
    );
    let position: i64 = b
        .text("#events tr.event .position")
        .await
        .trim()
        .parse()
        .expect("number");
    assert!(position > newest_before.trim().parse::<i64>().expect("number"));
    let actor = metadata(b).await[0]["actor"].clone();
    assert_eq!(actor, json!(c.customer.id));
    assert_eq!(
        b.script("return window.stillTheSamePage === true;").await,
        Value::Bool(true),
        "the page reloaded"
    );
}

async fn an_orders_aggregate_page_steps_from_version_1_to_the_last_showing_each_status(
    c: Arc<Console>,
) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url(&format!(
        "/console/aggregates/order/{}?version=1",
        c.order_id
    )))
    .await;
    let last: u32 = b
        .text("#last-version")
        .await
        .trim()
        .parse()
        .expect("a number");
    let mut statuses = Vec::new();
    let mut events = Vec::new();
    for version in 1..=last {
        let shown = b.text("#version").await;
        assert_eq!(shown.trim(), version.to_string(), "on {}", b.here().await);
        let state = b.text("#state").await;
        let state: Value = serde_json::from_str(&state)
            .unwrap_or_else(|e| panic!("#state is not JSON ({e}): {state}"));
        statuses.push(normalized(state["status"].as_str().unwrap_or_default()));
        events.push(b.text("#event").await);
        if version == 2 {
            b.screenshot(&screenshot("aggregate")).await;
        }
        if version < last {
            b.click("#next").await;
            let next = (version + 1).to_string();
            b.until("the next version", || async {
                let shown = b
                    .client
                    .find(Locator::Css("#version"))
                    .await?
                    .text()
                    .await?;
                Ok((shown.trim() == next).then_some(()))
            })
            .await;
        }
    }
    assert_eq!(
        statuses,
        ["pending", "awaitingpayment", "approved"],
        "statuses by version"
    );
    assert!(events[0].contains("OrderPlaced"), "{events:?}");
    assert!(
        events[last as usize - 1].contains("OrderApproved"),
        "{events:?}"
    );
    // At the last version there is no next one to go to.
    for next in b.all("#next").await {
        let enabled = next.is_enabled().await.unwrap_or(false)
            && next.attr("href").await.ok().flatten().is_some()
            && next.attr("aria-disabled").await.ok().flatten().as_deref() != Some("true");
        assert!(!enabled, "#next leads on at the last version");
    }
    assert!(!b.all("#as-of-form #as-of").await.is_empty());
}

async fn the_orders_timeline_shows_the_sagas_steps_in_order(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url(&format!("/console/orders/{}", c.order_id)))
        .await;
    b.wait_for("#timeline li.step").await;
    let steps = b.texts("#timeline li.step .step-name").await;
    assert!(
        steps.first().is_some_and(|s| s.contains("OrderPlaced")),
        "{steps:?}"
    );
    assert_in_order(
        &steps,
        &[
            "OrderPlaced",
            "StockReserved",
            "OrderAwaitingPayment",
            "PaymentCaptured",
            "OrderApproved",
        ],
    );
    let times = b.texts("#timeline li.step .step-time").await;
    let durations = b.texts("#timeline li.step .step-duration").await;
    assert_eq!(times.len(), steps.len());
    assert_eq!(durations.len(), steps.len());
    assert!(times.iter().all(|t| !t.trim().is_empty()), "{times:?}");
    let caused = b.all("#caused-events tr.event").await.len();
    assert!(
        caused >= steps.len(),
        "{caused} caused events for {} steps",
        steps.len()
    );
    b.wait_for("#order-aggregate").await;
    b.screenshot(&screenshot("order")).await;
}

async fn a_projection_rebuild_started_from_the_page_finishes(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url("/console/projections")).await;
    b.wait_for("#projections tr.projection").await;
    let names = b.texts("#projections tr.projection .name").await;
    assert!(!names.is_empty());
    b.click("#projections tr.projection .rebuild").await;
    let status = b
        .until("the rebuild to finish", || async {
            let status = b
                .client
                .find(Locator::Css("#rebuild-status"))
                .await?
                .text()
                .await?;
            Ok(status.contains("finished").then_some(status))
        })
        .await;
    assert!(status.contains("finished"), "{status:?}");
    b.screenshot(&screenshot("projections")).await;
}

async fn the_audit_lists_who_did_what_and_links_its_csv(c: Arc<Console>) {
    c.sign_in_as_admin().await;
    let b = &c.browser;
    b.open(&c.url("/console/audit")).await;
    b.wait_for("#audit-filters").await;
    b.type_into("#audit-filters [name=actor]", &c.seller.id)
        .await;
    b.click("#audit-filters [type=submit]").await;
    b.until("the audit filtered by actor", || async {
        Ok(b.here().await.contains("actor=").then_some(()))
    })
    .await;
    let entries = b.texts("#audit tr.entry").await;
    assert!(!entries.is_empty(), "no audit entries for the seller");
    assert!(
        entries.iter().any(|e| e.contains("ProductCreated")),
        "{entries:?}"
    );
    b.screenshot(&screenshot("audit")).await;
    let csv = b
        .wait_for("#csv")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("#csv has a link");
    assert!(csv.contains("audit.csv") && csv.contains("actor="), "{csv}");
    let path = csv.trim_start_matches(&c.server.base()).to_owned();
    let answer = c.get_as_browser(&path).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let body = answer.text().await.expect("the CSV");
    assert!(body.lines().count() >= 2, "{body}");
    assert!(body.contains("ProductCreated"), "{body}");
}

async fn graphiql_loads_and_runs_a_query_with_the_network_closed_but_for_the_server(
    c: Arc<Console>,
) {
    let b = &c.browser;
    // The browser cannot reach the outside (else this test proves nothing); asked from a blank
    // page, which no Content-Security-Policy limits.
    b.open("about:blank").await;
    let outside = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('https://unpkg.com/react@18/umd/react.production.min.js', {mode: 'no-cors'})
               .then(() => done('reached'), () => done('blocked'));",
            vec![],
        )
        .await
        .expect("fetch from the page");
    assert_eq!(
        outside,
        json!("blocked"),
        "the browser reaches the internet"
    );
    b.open(&c.url("/graphql")).await;
    b.wait_for(".graphiql-container .graphiql-query-editor .CodeMirror")
        .await;
    let query = "{ products(first: 5) { edges { node { name } } } }";
    // The editors are CodeMirror 5: set their text as a paste would.
    b.client
        .execute(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0]); return null;",
            vec![json!(query)],
        )
        .await
        .expect("set the query");
    b.client
        .find(Locator::XPath("//button[normalize-space()='Headers']"))
        .await
        .expect("the Headers tab")
        .click()
        .await
        .expect("open the Headers tab");
    let headers = json!({"Authorization": format!("Bearer {}", c.customer.token)}).to_string();
    b.until("the headers editor", || async {
        let set = b
            .client
            .execute(
                "const editors = [...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')];
                 if (editors.length !== 1) return false;
                 editors[0].CodeMirror.setValue(arguments[0]);
                 return true;",
                vec![json!(headers)],
            )
            .await?;
        Ok((set == json!(true)).then_some(()))
    })
    .await;
    b.click(".graphiql-execute-button").await;
    let result = b
        .until("the query's result", || async {
            let result = b
                .client
                .find(Locator::Css(".graphiql-response"))
                .await?
                .text()
                .await?;
            Ok(result.contains("Teapot").then_some(result))
        })
        .await;
    assert!(!result.contains("\"errors\""), "{result}");
    b.screenshot(&screenshot("graphiql")).await;
    // Every file the page loaded came from the server itself.
    let loaded = b
        .script("return performance.getEntriesByType('resource').map(e => e.name);")
        .await;
    let base = c.server.base();
    for url in loaded.as_array().expect("a list") {
        let url = url.as_str().unwrap_or_default();
        assert!(url.starts_with(&base), "GraphiQL loaded {url}");
    }
}

/// The metadata of each row of `#events`, as shown (pretty JSON).
async fn metadata(b: &Browser) -> Vec<Value> {
    b.texts("#events tr.event .metadata")
        .await
        .iter()
        .map(|text| {
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("a row's metadata is not JSON ({e}): {text}"))
        })
        .collect()
}

/// The actor of each row of `#events` (in full, from its metadata; the `.actor` cell shows a
/// short form).
async fn actors(b: &Browser) -> Vec<String> {
    metadata(b)
        .await
        .iter()
        .map(|m| m["actor"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `wanted` appear in `seen` in this order (others may come between).
fn assert_in_order(seen: &[String], wanted: &[&str]) {
    let mut rest = seen.iter();
    for step in wanted {
        assert!(
            rest.any(|s| s.contains(step)),
            "{step} missing or out of order in {seen:?} (wanted {wanted:?})"
        );
    }
}
