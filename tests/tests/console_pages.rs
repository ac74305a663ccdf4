//! The admin console over HTTP (`/console`): sign-in and its cookie, the 403 page of a
//! non-admin, CSRF on state-changing forms, the log's filters and keyset pages, an aggregate's
//! state at a version, the order timeline, the audit CSV and 4xx pages for bad input — on
//! both stores. (What a person sees in a browser is checked by the Chromium tests.)

use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::api_tests;
use regex::Regex;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::oneshot;

/// The console (with the APIs' shared authenticator) served for `api`'s store.
struct Console {
    base: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// A page: status, headers and text.
struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Console {
    async fn start(api: &TestApi) -> Self {
        let state = api.app.state();
        let graphql = query_api::build(api.store().clone(), state.authenticator().clone());
        let console = admin_console::Console::new(
            api.test.settings.clone(),
            state.app().clone(),
            state.authenticator().clone(),
            graphql,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(command_api::serve(listener, console.router(), async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            base,
            client,
            _stop: stop,
        }
    }

    async fn answer(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            // Text is shown with its quotes escaped; attributes keep theirs.
            text: response.text().await.expect("text").replace("&quot;", "\""),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        Self::answer(request.send().await.expect("GET")).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        Self::answer(request.send().await.expect("POST")).await
    }

    /// Signs `account` in; returns the `Cookie` header value of its session.
    async fn sign_in(&self, account: &Account) -> String {
        let page = self
            .post(
                "/console/login",
                None,
                &[("email", &account.email), ("password", &account.password)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        let set_cookie = page.headers[SET_COOKIE]
            .to_str()
            .expect("cookie")
            .to_owned();
        set_cookie.split(';').next().expect("name=value").to_owned()
    }
}

/// The global positions of the `tr.event` rows of a page's table `table_id`, in page order.
fn positions(html: &str, table_id: &str) -> Vec<i64> {
    let start = html
        .find(&format!("id=\"{table_id}\""))
        .unwrap_or_else(|| panic!("no #{table_id} in {html}"));
    let table = &html[start..];
    let table = &table[..table.find("</table>").expect("table end")];
    Regex::new(r#"<tr class="event" data-position="(\d+)""#)
        .unwrap()
        .captures_iter(table)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

/// The text of the element with `id` (its first text, up to the next tag).
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    let rest = &rest[rest.find('>').expect("tag end") + 1..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

/// The `href` of the element with `id`, unescaped.
fn href_of(html: &str, id: &str) -> Option<String> {
    let tag = Regex::new(&format!(r#"<a [^>]*\bid="{id}"[^>]*>"#))
        .unwrap()
        .find(html)?;
    let href = Regex::new(r#"\bhref="([^"]*)""#).unwrap();
    href.captures(tag.as_str())
        .map(|c| c[1].replace("&amp;", "&"))
}

async fn an_admin_signs_in_with_a_http_only_strict_cookie_and_signs_out(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;

    // Given no session, /console leads to the login page.
    let page = console.get("/console", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers[LOCATION], "/console/login");
    let page = console.get("/console/log", None).await;
    assert_eq!(page.headers[LOCATION], "/console/login");
    let page = console.get("/console/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(r#"id="sign-in""#));

    // A wrong password shows the error and sets no cookie.
    let page = console
        .post(
            "/console/login",
            None,
            &[("email", &admin.email), ("password", "wrong password")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.text.contains(r#"id="login-error""#), "{}", page.text);
    assert!(page.headers.get(SET_COOKIE).is_none());

    // When the admin signs in, the cookie is HttpOnly, SameSite=Strict, Path=/console.
    let page = console
        .post(
            "/console/login",
            None,
            &[("email", &admin.email), ("password", &admin.password)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert_eq!(page.headers[LOCATION], "/console/log");
    let set_cookie = page.headers[SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.starts_with("eventshop_console="), "{set_cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // Then the log shows who is signed in, and /console leads to it.
    let page = console.get("/console/log", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(text_of(&page.text, "whoami"), admin.email);
    let page = console.get("/console", Some(&cookie)).await;
    assert_eq!(page.headers[LOCATION], "/console/log");

    // Signing out (with the form's CSRF token) clears the cookie.
    let csrf = Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(&page.text)
        .map(|c| c[1].to_owned());
    let page = console.get("/console/log", Some(&cookie)).await;
    let csrf = csrf.or_else(|| {
        Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
            .unwrap()
            .captures(&page.text)
            .map(|c| c[1].to_owned())
    });
    let csrf = csrf.expect("a CSRF token in the sign-out form");
    let page = console
        .post("/console/logout", Some(&cookie), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

async fn a_customer_gets_the_admins_only_page(api: TestApi) {
    let console = Console::start(&api).await;
    let customer = api.register("customer").await;
    let cookie = console.sign_in(&customer).await;
    for path in ["/console/log", "/console/projections", "/console/audit"] {
        let page = console.get(path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(text_of(&page.text, "forbidden"), "Admins only");
        assert!(page.text.contains(r#"id="sign-out""#));
    }
    let page = console
        .post("/console/projections/products/rebuild", Some(&cookie), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

async fn a_post_without_the_csrf_token_is_refused(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    for form in [vec![], vec![("csrf", "0badc0de")]] {
        for path in [
            "/console/projections/products/rebuild",
            "/console/projections/products/retry",
            "/console/logout",
        ] {
            let page = console.post(path, Some(&cookie), &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {form:?}");
        }
    }
    // The session still works: the refused sign-out did nothing.
    let page = console.get("/console/projections", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains(r#"data-name="products""#),
        "{}",
        page.text
    );
}

async fn the_log_filters_and_pages_by_position(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 500, 1).await;
    for _ in 0..59 {
        let answer = api
            .post(
                &format!("/api/v1/products/{product}/restock"),
                Some(&seller.token),
                json!({"quantity": 1}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }

    // The product's 60 events: 50 newest first, then the 10 older ones.
    let first = console
        .get(
            &format!("/console/log?aggregate_type=product&aggregate_id={product}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let page_one = positions(&first.text, "events");
    assert_eq!(page_one.len(), 50);
    assert!(page_one.windows(2).all(|w| w[0] > w[1]), "{page_one:?}");
    let older = href_of(&first.text, "older").expect("#older");
    assert!(
        older.contains(&format!("before={}", page_one[49])),
        "{older}"
    );
    let second = console.get(&older, Some(&cookie)).await;
    let page_two = positions(&second.text, "events");
    assert_eq!(page_two.len(), 10);
    assert!(page_two[0] < page_one[49]);
    assert!(href_of(&second.text, "older").is_none());
    let history = api.store().history("product", &product).await.unwrap();
    let mut all: Vec<i64> = page_one.iter().chain(&page_two).copied().collect();
    all.reverse();
    assert_eq!(all, history.iter().map(|e| e.position).collect::<Vec<_>>());

    // By event type and actor: only matching events.
    let page = console
        .get(
            &format!("/console/log?event_type=ProductCreated&actor={}", seller.id),
            Some(&cookie),
        )
        .await;
    assert_eq!(positions(&page.text, "events"), vec![history[0].position]);
    let page = console
        .get(&format!("/console/log?actor={}", admin.id), Some(&cookie))
        .await;
    let by_admin = positions(&page.text, "events");
    assert!(!by_admin.is_empty());
    assert!(by_admin.iter().all(|p| !all.contains(p)));

    // By correlation: the one restock's event.
    let restock = &history[5];
    let correlation = restock
        .metadata
        .correlation_id
        .clone()
        .expect("correlation");
    let page = console
        .get(
            &format!("/console/log?correlation_id={correlation}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(positions(&page.text, "events"), vec![restock.position]);

    // By time: nothing before the events, everything of the product up to now.
    let page = console
        .get(
            &format!("/console/log?aggregate_id={product}&to=2000-01-01T00:00"),
            Some(&cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(positions(&page.text, "events").is_empty());
    let page = console
        .get(
            &format!(
                "/console/log?aggregate_id={product}&from=2000-01-01T00:00&to=2999-01-01T00:00:00Z"
            ),
            Some(&cookie),
        )
        .await;
    assert_eq!(positions(&page.text, "events"), page_one);
}

async fn the_aggregate_page_shows_the_state_at_each_version(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 500, 5).await;
    let answer = api
        .post(
            &format!("/api/v1/products/{product}/restock"),
            Some(&seller.token),
            json!({"quantity": 7}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let path = format!("/console/aggregates/product/{product}");

    // Version 1: the created product, no way back.
    let page = console
        .get(&format!("{path}?version=1"), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(text_of(&page.text, "version"), "1");
    assert_eq!(text_of(&page.text, "last-version"), "2");
    assert!(page.text.contains(r#""stockOnHand": 5"#), "{}", page.text);
    assert!(href_of(&page.text, "prev").is_none());
    assert_eq!(
        href_of(&page.text, "next").unwrap(),
        format!("{path}?version=2")
    );
    assert!(page.text.contains("ProductCreated"));

    // The default is the last version, the restock's, its change highlighted.
    let page = console.get(&path, Some(&cookie)).await;
    assert_eq!(text_of(&page.text, "version"), "2");
    assert!(page.text.contains(r#""stockOnHand": 12"#), "{}", page.text);
    assert!(
        page.text
            .contains(r#"class="field changed" data-field="stockOnHand""#),
        "{}",
        page.text
    );
    assert!(href_of(&page.text, "next").is_none());
    assert!(page.text.contains("StockAdded"));

    // As of a time: after both events, the last; before the first, none (404).
    let page = console
        .get(&format!("{path}?as_of=2999-01-01T00:00"), Some(&cookie))
        .await;
    assert_eq!(text_of(&page.text, "version"), "2");
    let page = console
        .get(&format!("{path}?as_of=2000-01-01T00:00"), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

async fn the_order_page_shows_its_steps_and_caused_events(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    let product = api.product(&seller, 500, 5).await;
    let order = api.order(&customer, &[(&product, 1)], "EUR").await;
    let page = console
        .get(&format!("/console/orders/{order}"), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text
            .contains(r#"<span class="step-name">OrderPlaced</span>"#),
        "{}",
        page.text
    );
    assert!(!positions(&page.text, "caused-events").is_empty());
    assert!(href_of(&page.text, "order-aggregate")
        .unwrap()
        .starts_with(&format!("/console/aggregates/order/{order}")));
    let page = console
        .get(&format!("/console/aggregates/order/{order}"), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains(r#""status": "PENDING""#),
        "{}",
        page.text
    );
}

async fn the_audit_csv_has_a_header_and_a_line_per_entry(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    api.product(&seller, 500, 5).await;
    eventshop_tests::projections::catch_up_all(api.store()).await;
    let page = console
        .get(
            &format!("/console/audit?actor={}", seller.id),
            Some(&cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = page.text.matches(r#"<tr class="entry""#).count();
    assert!(rows >= 2, "{}", page.text);
    let csv_href = href_of(&page.text, "csv").expect("#csv");
    assert_eq!(csv_href, format!("/console/audit.csv?actor={}", seller.id));
    let csv = console.get(&csv_href, Some(&cookie)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("position,recorded_at,actor,event_type"));
    assert_eq!(lines.len(), rows + 1, "{}", csv.text);
    assert!(lines[1..].iter().all(|l| l.contains(&seller.id)));
    assert!(lines.iter().any(|l| l.contains("ProductCreated")));
}

async fn bad_input_is_a_4xx_page(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let unknown = uuid::Uuid::now_v7();
    for (path, status) in [
        ("/console/aggregates/order/not-a-uuid".to_owned(), 400),
        (format!("/console/aggregates/basket/{unknown}"), 404),
        (format!("/console/aggregates/order/{unknown}"), 404),
        (
            format!("/console/aggregates/account/{}?version=0", admin.id),
            400,
        ),
        (
            format!("/console/aggregates/account/{}?version=999", admin.id),
            404,
        ),
        (
            format!("/console/aggregates/account/{}?as_of=soon", admin.id),
            400,
        ),
        ("/console/log?from=yesterday".to_owned(), 400),
        ("/console/log?before=abc".to_owned(), 400),
        ("/console/log?aggregate_type=basket".to_owned(), 400),
        (
            "/console/log?from=2026-02-01T00:00&to=2026-01-01T00:00".to_owned(),
            400,
        ),
        (format!("/console/log?actor={}", "x".repeat(500)), 400),
        ("/console/orders/xyz".to_owned(), 400),
        (format!("/console/orders/{unknown}"), 404),
        ("/console/audit?to=never".to_owned(), 400),
        ("/console/no-such-page".to_owned(), 404),
    ] {
        let page = console.get(&path, Some(&cookie)).await;
        assert_eq!(page.status.as_u16(), status, "{path}: {}", page.text);
        assert!(page.text.contains(r#"id="error""#), "{path}");
    }
    // The account's own page answers.
    let page = console
        .get(
            &format!("/console/aggregates/account/{}", admin.id),
            Some(&cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}

async fn a_new_matching_event_arrives_live_as_a_row(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 500, 5).await;
    let head = api.store().head_position().await.unwrap();

    // Given the page's live stream of the seller's events…
    let page = console
        .get(&format!("/console/log?actor={}", seller.id), Some(&cookie))
        .await;
    let live = Regex::new(r#"data-src="([^"]*)""#)
        .unwrap()
        .captures(&page.text)
        .map(|c| c[1].replace("&amp;", "&"))
        .expect("the live source");
    assert!(
        live.starts_with(&format!("/console/log/live?actor={}", seller.id)),
        "{live}"
    );
    let mut stream = console
        .client
        .get(format!("{}{live}", console.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("live");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // …when the seller restocks (and an admin's event happens too)…
    let answer = api
        .post(
            &format!("/api/v1/products/{product}/restock"),
            Some(&seller.token),
            json!({"quantity": 1}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let restocked = answer.body["position"].as_i64().expect("position");
    assert!(restocked > head);

    // …then its row arrives, and only it.
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !received.contains(&format!("data-position=\"{restocked}\"")) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the row arrives within 10 s")
            .expect("stream")
            .expect("open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: row"), "{received}");
    assert!(received.contains("StockAdded"), "{received}");
    let rows = Regex::new(r#"data-position="(\d+)""#).unwrap();
    let positions: Vec<i64> = rows
        .captures_iter(&received)
        .map(|c| c[1].parse().unwrap())
        .collect();
    // The stream starts at the commit-safe head taken before the page was read; on PostgreSQL
    // other transactions of the cluster can hold that head back, so rows the page already
    // shows may come again (the page's script skips them). Nothing else may come: no event of
    // another actor, and the new row once.
    let shown: Vec<i64> = rows
        .captures_iter(&page.text)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(
        positions.iter().filter(|p| **p == restocked).count(),
        1,
        "{received}"
    );
    assert!(
        positions
            .iter()
            .all(|p| *p == restocked || shown.contains(p)),
        "{received}"
    );
}

async fn a_rebuild_started_from_the_page_finishes(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    let seller = api.register("seller").await;
    api.product(&seller, 500, 5).await;
    let page = console.get("/console/projections", Some(&cookie)).await;
    assert!(!page.text.contains(r#"id="rebuild-status""#));
    let csrf = Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(&page.text)
        .map(|c| c[1].to_owned())
        .expect("csrf");

    // When the admin starts a rebuild of products…
    let started = console
        .post(
            "/console/projections/products/rebuild",
            Some(&cookie),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    assert_eq!(started.headers[LOCATION], "/console/projections");

    // …then the page shows it running, then finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = console.get("/console/projections", Some(&cookie)).await;
        let section = &page.text[page
            .text
            .find(r#"id="rebuild-status""#)
            .expect("#rebuild-status")..];
        if section.contains("finished") {
            assert!(!section.contains("failed"), "{section}");
            assert!(section.contains("events replayed"), "{section}");
            break;
        }
        assert!(section.contains("running"), "{section}");
        assert!(
            std::time::Instant::now() < deadline,
            "the rebuild never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // An unknown projection is a 404.
    let page = console
        .post(
            "/console/projections/baskets/rebuild",
            Some(&cookie),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

api_tests!(
    an_admin_signs_in_with_a_http_only_strict_cookie_and_signs_out,
    a_customer_gets_the_admins_only_page,
    a_post_without_the_csrf_token_is_refused,
    the_log_filters_and_pages_by_position,
    a_new_matching_event_arrives_live_as_a_row,
    the_aggregate_page_shows_the_state_at_each_version,
    the_order_page_shows_its_steps_and_caused_events,
    the_audit_csv_has_a_header_and_a_line_per_entry,
    bad_input_is_a_4xx_page,
    a_rebuild_started_from_the_page_finishes,
    a_projection_split_into_segments_shows_a_row_per_segment,
);

async fn a_projection_split_into_segments_shows_a_row_per_segment(api: TestApi) {
    let console = Console::start(&api).await;
    let admin = api.admin().await;
    let cookie = console.sign_in(&admin).await;
    // Given the audit projection split into four segments…
    let mut tx = api.store().begin().await.unwrap();
    for name in eventstore_config::segments::checkpoint_names("audit", 4) {
        eventstore_config::followers::write_checkpoint(
            &mut tx,
            &name,
            eventstore_config::Checkpoint::START,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // …when an admin opens the projections page…
    let page = console.get("/console/projections", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    // …then it shows one row per segment of it, and none for the unsplit ones.
    let segments: Vec<String> =
        Regex::new(r#"<tr class="segment" data-name="([^"]+)" data-segment="(\d+)""#)
            .unwrap()
            .captures_iter(&page.text)
            .map(|c| format!("{}/{}", &c[1], &c[2]))
            .collect();
    assert_eq!(segments, ["audit/0", "audit/1", "audit/2", "audit/3"]);
}
