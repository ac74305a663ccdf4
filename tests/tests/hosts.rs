//! Segments across hosts (issue #15): three network namespaces — three "hosts", each joined
//! to the root namespace by a veth pair on 10.77.0.0/24 — each run `eventshop projectors run`
//! with four segments per follower against the test's own PostgreSQL instance (`initdb` into a
//! temporary folder, listening on the veth addresses only, with TCP keepalives of a few
//! seconds). The REST API runs in the root namespace. While 300 orders are placed, host 2 is
//! cut off (its link set down) and host 3 is SIGKILLed. Afterwards every order is final,
//! nothing was reserved or captured twice, the read models equal a fresh rebuild and host 1
//! owns every segment.
//!
//! Needs root (`ip netns`, veth pairs, running PostgreSQL as the `postgres` user) and
//! PostgreSQL 15's binaries in `/usr/lib/postgresql/15/bin`; fails loudly without them. The
//! namespaces, links, server and its folder are removed even when the test fails (Drop guards).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::order::OrderStatus;
use domain::product::ProductEvent;
use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::projections::{dump_all, wait_applied};
use eventshop_tests::saga::{assert_books_balance, settle};
use eventshop_tests::TestStore;
use eventstore_config::Settings;
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const ORDERS: usize = 300;
const CUSTOMERS: usize = 20;
const HOSTS: usize = 3;
const SEGMENTS: &str = "4";

/// Runs `program args`, panicking with its error output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The namespaces and veth pairs; removed on drop.
struct Net {
    prefix: String,
}

impl Net {
    fn namespace(&self, host: usize) -> String {
        format!("{}n{host}", self.prefix)
    }

    fn veth(&self, host: usize) -> String {
        format!("{}h{host}", self.prefix)
    }

    /// The root namespace's address on `host`'s link (where the host reaches PostgreSQL).
    fn server_address(host: usize) -> String {
        format!("10.77.0.{}", 4 * (host - 1) + 1)
    }

    fn make() -> Net {
        let uid = run("id", &["-u"]);
        assert_eq!(
            uid.trim(),
            "0",
            "the hosts test needs root (ip netns, veth pairs): run it as root"
        );
        let addresses = run("ip", &["-o", "addr"]);
        assert!(
            !addresses.contains("10.77.0."),
            "10.77.0.0/24 is in use on this machine; the hosts test needs it for itself"
        );
        let net = Net {
            prefix: format!("esh{}", std::process::id() % 100_000),
        };
        for host in 1..=HOSTS {
            let (ns, veth) = (net.namespace(host), net.veth(host));
            let peer = format!("{}p{host}", net.prefix);
            let server = Net::server_address(host);
            let local = format!("10.77.0.{}", 4 * (host - 1) + 2);
            run("ip", &["netns", "add", &ns]);
            run(
                "ip",
                &["link", "add", &veth, "type", "veth", "peer", "name", &peer],
            );
            run("ip", &["link", "set", &peer, "netns", &ns]);
            run(
                "ip",
                &["addr", "add", &format!("{server}/30"), "dev", &veth],
            );
            run("ip", &["link", "set", &veth, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", ns.as_str(), "ip"];
                all.extend_from_slice(args);
                run("ip", &all);
            };
            inside(&["addr", "add", &format!("{local}/30"), "dev", &peer]);
            inside(&["link", "set", &peer, "up"]);
            inside(&["link", "set", "lo", "up"]);
        }
        net
    }

    /// Cuts `host` off: its link goes down.
    fn cut_off(&self, host: usize) {
        run("ip", &["link", "set", &self.veth(host), "down"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in 1..=HOSTS {
            let _ = Command::new("ip")
                .args(["link", "del", &self.veth(host)])
                .output();
            let _ = Command::new("ip")
                .args(["netns", "del", &self.namespace(host)])
                .output();
        }
    }
}

/// The test's own PostgreSQL server; stopped and its folder removed on drop.
struct Postgres {
    dir: PathBuf,
    server: Option<Child>,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        for program in ["initdb", "postgres"] {
            assert!(
                std::path::Path::new(PG_BIN).join(program).exists(),
                "the hosts test needs PostgreSQL 15's {PG_BIN}/{program}"
            );
        }
        let uid: u32 = run("id", &["-u", "postgres"]).trim().parse().expect("uid");
        let gid: u32 = run("id", &["-g", "postgres"]).trim().parse().expect("gid");
        let dir = std::env::temp_dir().join(format!("eventshop-hosts-{}", Uuid::new_v4().simple()));
        let mut pg = Postgres {
            dir: dir.clone(),
            server: None,
            port: 20_000 + (std::process::id() % 10_000) as u16,
        };
        std::fs::create_dir_all(dir.join("sock")).expect("temp folder");
        run(
            "chown",
            &["-R", "postgres:postgres", dir.to_str().expect("path")],
        );
        let data = dir.join("data");
        let status = Command::new(format!("{PG_BIN}/initdb"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let hba = data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        rules.push_str("\nhost all all 10.77.0.0/24 trust\n");
        std::fs::write(&hba, rules).expect("pg_hba.conf");
        let listen: Vec<String> = (1..=HOSTS).map(Net::server_address).collect();
        let log = std::fs::File::create(dir.join("postgres.log")).expect("log");
        let server = Command::new(format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.join("sock"))
            .args(["-p", &pg.port.to_string()])
            .args(["-c", &format!("listen_addresses={}", listen.join(","))])
            // A peer cut off is noticed within seconds (its advisory locks then freed).
            .args([
                "-c",
                "tcp_keepalives_idle=1",
                "-c",
                "tcp_keepalives_interval=1",
            ])
            .args([
                "-c",
                "tcp_keepalives_count=2",
                "-c",
                "tcp_user_timeout=3000",
            ])
            .args(["-c", "max_connections=200", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        pg.server = Some(server);
        pg
    }

    /// The URL of database `name` as `host` reaches it.
    fn url(&self, host: usize, name: &str) -> String {
        format!(
            "postgres://postgres@{}:{}/{name}",
            Net::server_address(host),
            self.port
        )
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            use sqlx::Connection;
            if sqlx::PgConnection::connect(&self.url(1, "postgres"))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test's PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Fast shutdown (SIGINT), then SIGKILL if it lingers.
            let _ = Command::new("kill")
                .args(["-INT", &server.id().to_string()])
                .output();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
        if std::thread::panicking() {
            // Keep the logs of a failed run.
            let keep = std::env::temp_dir().join("eventshop-hosts-failed");
            let _ = std::fs::remove_dir_all(&keep);
            let _ = std::fs::create_dir_all(&keep);
            for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    let _ = std::fs::copy(entry.path(), keep.join(entry.file_name()));
                }
            }
            eprintln!("hosts test logs kept in {}", keep.display());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The worker processes; SIGKILLed on drop.
struct Workers(Vec<Option<Child>>);

impl Workers {
    fn start(net: &Net, pg: &Postgres, database: &str) -> Workers {
        let binary = eventshop_tests::child::binary();
        let mut children = Vec::new();
        for host in 1..=HOSTS {
            let log = std::fs::File::create(pg.dir.join(format!("worker{host}.log"))).expect("log");
            let child = Command::new("ip")
                .args(["netns", "exec", &net.namespace(host)])
                .arg(&binary)
                .args(["projectors", "run"])
                .env("DATABASE_URL", pg.url(host, database))
                .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
                .env("EVENTSHOP_SEGMENTS", SEGMENTS)
                .env("EVENTSHOP_MAX_CONNECTIONS", "24")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start eventshop projectors run in a namespace");
            children.push(Some(child));
        }
        Workers(children)
    }

    /// The owner-id prefix of `host`'s worker (`pid<pid>-`).
    fn owner_prefix(&self, host: usize) -> String {
        let child = self.0[host - 1].as_ref().expect("a running worker");
        format!("pid{}-", child.id())
    }

    fn kill(&mut self, host: usize) {
        if let Some(mut child) = self.0[host - 1].take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `projections list --json`, one object per segment.
fn list_segments(url: &str) -> Vec<serde_json::Value> {
    let output = Command::new(eventshop_tests::child::binary())
        .args(["projections", "list", "--json"])
        .env("DATABASE_URL", url)
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "error")
        .output()
        .expect("run eventshop projections list");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Waits (up to `secs`) until every segment's owner starts with one of `prefixes`, each
/// prefix owning at least one segment.
async fn wait_for_owners(url: &str, prefixes: &[String], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let url = url.to_owned();
        let segments = tokio::task::spawn_blocking(move || list_segments(&url))
            .await
            .expect("list");
        let owned = |segment: &serde_json::Value| {
            let owner = segment["owner"].as_str().unwrap_or("");
            prefixes.iter().any(|p| owner.starts_with(p.as_str()))
        };
        let every = !segments.is_empty()
            && segments.iter().all(|s| s["segments"] == 4 && owned(s))
            && prefixes.iter().all(|p| {
                segments
                    .iter()
                    .any(|s| s["owner"].as_str().unwrap_or("").starts_with(p.as_str()))
            });
        if every {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "segments not owned by {prefixes:?} within {secs} s: {segments:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_three_hosts_when_one_is_cut_off_and_one_killed_during_three_hundred_orders_then_the_survivor_finishes_every_order_once(
) {
    let started = Instant::now();
    let phase = |name: &str| eprintln!("{:>6.1} s  {name}", started.elapsed().as_secs_f64());
    let net = Net::make();
    let pg = Postgres::start();
    pg.wait_ready().await;
    let settings = Settings {
        max_connections: 16,
        ..Settings::default()
    };
    let test = TestStore::postgres_on(&pg.url(1, "postgres"), settings).await;
    let database = test
        .url()
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let api = Arc::new(TestApi::start(test).await);
    let store = api.store().clone();
    let list_url = pg.url(1, &database);

    let seller = api.register("seller").await;
    let mut products = Vec::new();
    // One product with scarce stock (some orders are rejected); poor customers are declined.
    for stock in [40, 200, 200, 200, 200, 200] {
        products.push(api.product(&seller, 100, stock).await);
    }
    let customers: Vec<Account> = futures::future::join_all((0..CUSTOMERS).map(|n| {
        let api = api.clone();
        async move {
            let customer = api.register("customer").await;
            let amount = if n % 6 == 0 { 150 } else { 100_000 };
            let answer = api
                .post(
                    &format!("/api/v1/accounts/{}/deposits", customer.id),
                    Some(&customer.token),
                    json!({"amount": amount, "currency": "EUR"}),
                )
                .await;
            assert!(answer.status.is_success(), "{}", answer.body);
            customer
        }
    }))
    .await;

    phase("accounts and products ready");
    let mut workers = Workers::start(&net, &pg, &database);
    let prefixes: Vec<String> = (1..=HOSTS).map(|h| workers.owner_prefix(h)).collect();
    wait_for_owners(&list_url, &prefixes, 30).await;
    phase("three hosts share the segments");

    let placed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let placing = {
        let (api, products, customers, placed) = (
            api.clone(),
            products.clone(),
            customers.clone(),
            placed.clone(),
        );
        tokio::spawn(async move {
            futures::stream::iter(0..ORDERS)
                .map(|n| {
                    let api = api.clone();
                    let customer = customers[n % CUSTOMERS].clone();
                    let items = vec![json!({"product_id": products[n % 6], "quantity": 1 + n % 2})];
                    let placed = placed.clone();
                    async move {
                        let answer = api
                            .post(
                                "/api/v1/orders",
                                Some(&customer.token),
                                json!({"items": items, "currency": "EUR"}),
                            )
                            .await;
                        assert!(answer.status.is_success(), "{}", answer.body);
                        placed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        answer.body["order_id"].as_str().unwrap().to_owned()
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<String>>()
                .await
        })
    };
    let wait_placed = |n: usize| {
        let placed = placed.clone();
        async move {
            while placed.load(std::sync::atomic::Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_placed(ORDERS / 3).await;
    net.cut_off(2);
    phase("host 2 cut off");
    wait_placed(2 * ORDERS / 3).await;
    workers.kill(3);
    phase("host 3 killed");
    let orders = placing.await.expect("placing orders");
    assert_eq!(orders.len(), ORDERS);
    phase("orders placed");

    // Host 1 takes over every segment and finishes every order.
    let settling = tokio::spawn({
        let (store, orders) = (store.clone(), orders.clone());
        async move { settle(&store, &orders, Duration::from_secs(60)).await }
    });
    let statuses = match settling.await {
        Ok(statuses) => statuses,
        Err(error) => {
            let url = list_url.clone();
            let segments = tokio::task::spawn_blocking(move || list_segments(&url))
                .await
                .expect("list");
            for segment in segments {
                eprintln!(
                    "{} {}/{} owner {} position {} lag {}",
                    segment["name"],
                    segment["segment"],
                    segment["segments"],
                    segment["owner"],
                    segment["position"],
                    segment["lag"]
                );
            }
            panic!("orders did not settle: {error}");
        }
    };
    assert!(statuses.iter().all(|s| s.is_terminal()));
    assert!(statuses.contains(&OrderStatus::Approved));
    phase("orders settled");
    wait_for_owners(&list_url, &prefixes[..1], 20).await;
    phase("host 1 owns every segment");

    // Nothing reserved or captured twice.
    for product in &products {
        let mut reserved: BTreeMap<Uuid, usize> = BTreeMap::new();
        for event in store.history("product", product).await.unwrap() {
            if let ProductEvent::StockReserved { order_id, .. } = event.decode().unwrap() {
                *reserved.entry(order_id).or_default() += 1;
            }
        }
        assert!(reserved.values().all(|n| *n == 1), "a double reservation");
    }
    let wallets: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    assert_books_balance(&store, &products, &wallets).await;

    // The read models equal a fresh rebuild.
    wait_applied(&store, 30).await;
    drop(workers);
    let live = dump_all(&store).await;
    projectors::rebuild(
        &store,
        &projectors::read_models::all(),
        1000,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("rebuild");
    assert_eq!(dump_all(&store).await, live);
    phase("read models equal a rebuild");
    drop(api);
}
