//! Benchmark: commands over HTTP against the store's real ceiling, in the same run.
//!
//! Each round (rounds interleaved, medians printed at the end):
//! 1. **the ceiling**: on PostgreSQL, `pgbench` (32 clients, `-j 2`, `-M prepared`, a script of
//!    one single-row `INSERT` per transaction) into the `events` table of a scratch database
//!    migrated like eventshop's (same columns, indexes and trigger); on SQLite (`--sqlite`), a
//!    C client (the SQLite C API through `libsqlite3-sys`) committing one single-row `INSERT`
//!    per transaction into the same table shape, WAL and `synchronous=NORMAL` like eventshop;
//! 2. **`eventshop command-api`** and 3. **`eventshop serve`** (projectors and saga running),
//!    each a child process on a fresh database: the clients (32) each register an account,
//!    then deposit into its own wallet in a closed loop (`POST /api/v1/accounts/{id}/deposits`).
//!
//! Printed per system: requests/s, the ratio to the ceiling, p50/p99 latency, PostgreSQL CPU
//! per request (utime+stime of every `postgres` process from /proc, plus the postmaster's
//! reaped children, before and after) and eventshop CPU per request (/proc/<child>/stat); and
//! the machine's load average before and after.
//!
//! ```sh
//! cargo build --release --bin eventshop --example bench_commands
//! target/release/examples/bench_commands [--sqlite] [--seconds 20] [--rounds 3] [--clients 32]
//! ```
//! The eventshop binary is `EVENTSHOP_BIN`, else `eventshop` beside the examples folder. The
//! PostgreSQL server is `TEST_DATABASE_URL`, else `DATABASE_URL`, else
//! postgres://postgres@127.0.0.1:5432 (`pgbench` on the PATH).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use eventstore_config::{Settings, Store};
use serde_json::json;
use sqlx::Connection;

// The same allocator as the eventshop binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Clock ticks per second of /proc's CPU times (`_SC_CLK_TCK`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

const PAYLOAD: &str = r#"{"FundsDeposited":{"amount":{"amount":100,"currency":"EUR"}}}"#;
const METADATA: &str = r#"{"actor":"bench"}"#;

#[derive(Debug, Clone)]
struct Args {
    sqlite: bool,
    seconds: u64,
    rounds: usize,
    clients: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        sqlite: false,
        seconds: 20,
        rounds: 3,
        clients: 32,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<u64> {
            args.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--sqlite" => parsed.sqlite = true,
            "--seconds" => parsed.seconds = number("--seconds")?,
            "--rounds" => parsed.rounds = number("--rounds")?.max(1) as usize,
            "--clients" => parsed.clients = number("--clients")?.max(1) as usize,
            other => {
                bail!("unknown argument {other} (--sqlite, --seconds N, --rounds N, --clients N)")
            }
        }
    }
    Ok(parsed)
}

/// One system's figures in one round.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
    /// PostgreSQL CPU per request, µs (None on SQLite).
    db_cpu_us: Option<f64>,
    /// eventshop's CPU per request, µs (None for the ceiling).
    app_cpu_us: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let bin = eventshop_bin()?;
    let store = if args.sqlite { "SQLite" } else { "PostgreSQL" };
    println!(
        "eventshop command benchmark: {store}, {} clients, {} s per phase, {} rounds; load average {}",
        args.clients,
        args.seconds,
        args.rounds,
        load_average()
    );
    let names = ["ceiling", "command-api", "serve"];
    let mut rounds: Vec<[Figures; 3]> = Vec::new();
    for round in 1..=args.rounds {
        let ceiling = if args.sqlite {
            sqlite_ceiling(&args).await?
        } else {
            pgbench_ceiling(&args).await?
        };
        let command_api = eventshop(&bin, "command-api", &args, round).await?;
        let serve = eventshop(&bin, "serve", &args, round).await?;
        let figures = [ceiling, command_api, serve];
        for (name, f) in names.iter().zip(&figures) {
            println!("round {round}: {name:<12} {}", line(f, ceiling.per_sec));
        }
        rounds.push(figures);
    }
    println!("medians of {} rounds:", args.rounds);
    let ceiling = median(rounds.iter().map(|r| r[0].per_sec));
    for (i, name) in names.iter().enumerate() {
        let of = |f: fn(&Figures) -> Option<f64>| {
            let values: Vec<f64> = rounds.iter().filter_map(|r| f(&r[i])).collect();
            (!values.is_empty()).then(|| median(values.into_iter()))
        };
        let f = Figures {
            per_sec: median(rounds.iter().map(|r| r[i].per_sec)),
            p50_ms: median(rounds.iter().map(|r| r[i].p50_ms)),
            p99_ms: median(rounds.iter().map(|r| r[i].p99_ms)),
            failures: rounds.iter().map(|r| r[i].failures).sum(),
            db_cpu_us: of(|f| f.db_cpu_us),
            app_cpu_us: of(|f| f.app_cpu_us),
        };
        println!("{name:<12} {}", line(&f, ceiling));
    }
    println!("load average {}", load_average());
    Ok(())
}

fn line(f: &Figures, ceiling: f64) -> String {
    let cpu = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} µs"));
    let ms = |v: f64| {
        if v.is_nan() {
            "-".to_owned()
        } else {
            format!("{v:.2} ms")
        }
    };
    format!(
        "{:>8.0} requests/s  {:.2} of the ceiling  p50 {}  p99 {}  database CPU/request {}  eventshop CPU/request {}  failed {}",
        f.per_sec,
        f.per_sec / ceiling.max(f64::MIN_POSITIVE),
        ms(f.p50_ms),
        ms(f.p99_ms),
        cpu(f.db_cpu_us),
        cpu(f.app_cpu_us),
        f.failures
    )
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn eventshop_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EVENTSHOP_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("eventshop"))
        .context("locating the eventshop binary")?;
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release --bin eventshop) or set EVENTSHOP_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

// ---- CPU from /proc ----

/// utime + stime (+ cutime + cstime: the reaped children's) of one /proc/<pid>/stat, in ticks,
/// and the process's name.
fn stat_ticks(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    // Fields after the name: state is field 3; utime..cstime are fields 14..17.
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    Some((name, ticks))
}

/// CPU seconds of every `postgres` process so far, including the backends that ended (their
/// time is in the postmaster's reaped-children counters).
fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let ticks: u64 = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| stat_ticks(&pid))
        .filter(|(name, _)| name == "postgres")
        .map(|(_, ticks)| ticks)
        .sum();
    ticks as f64 / TICKS_PER_SEC
}

fn process_cpu(pid: u32) -> f64 {
    stat_ticks(&pid.to_string()).map_or(0.0, |(_, t)| t as f64) / TICKS_PER_SEC
}

// ---- databases ----

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A scratch PostgreSQL database, dropped by [`Scratch::drop_now`].
struct Scratch {
    server: String,
    name: String,
    url: String,
}

impl Scratch {
    async fn create(prefix: &str) -> anyhow::Result<Self> {
        let server = with_database(&server_url(), "postgres");
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = with_database(&server, &name);
        Ok(Self { server, name, url })
    }

    async fn drop_now(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.server).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

/// The URL as pgbench (libpq) should see it: TLS as eventshop decides it (none to a loopback
/// host unless the URL says `sslmode`).
fn libpq_url(url: &str) -> String {
    if url.contains("sslmode=") {
        return url.to_owned();
    }
    let local = [
        "@127.0.0.1",
        "@localhost",
        "@[::1]",
        "://127.0.0.1",
        "://localhost",
    ]
    .iter()
    .any(|h| url.contains(h));
    match (local, url.contains('?')) {
        (false, _) => url.to_owned(),
        (true, true) => format!("{url}&sslmode=disable"),
        (true, false) => format!("{url}?sslmode=disable"),
    }
}

async fn pgbench_ceiling(args: &Args) -> anyhow::Result<Figures> {
    let scratch = Scratch::create("eventshop_ceiling").await?;
    let settings = Settings {
        database_url: scratch.url.clone(),
        max_connections: 2,
        ..Settings::default()
    };
    Store::open(&settings).await?.close().await;
    let script = std::env::temp_dir().join(format!("eventshop_ceiling_{}.sql", scratch.name));
    std::fs::write(
        &script,
        format!(
            "\\set seq :seq + 1\n\
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ('bench', 'client-' || (:client_id)::text, \
             :seq, 'FundsDeposited', '1', '{PAYLOAD}', '{METADATA}');\n"
        ),
    )?;
    let cpu_before = postgres_cpu();
    let mut pgbench = Command::new("pgbench");
    pgbench
        .args([
            "-n",
            "-c",
            &args.clients.to_string(),
            "-j",
            "2",
            "-M",
            "prepared",
        ])
        .args(["-T", &args.seconds.to_string(), "-D", "seq=0", "-f"])
        .arg(&script)
        .arg(libpq_url(&scratch.url));
    let output = tokio::task::spawn_blocking(move || pgbench.output())
        .await?
        .context("running pgbench (is it on the PATH?)")?;
    let cpu = postgres_cpu() - cpu_before;
    std::fs::remove_file(&script).ok();
    scratch.drop_now().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let number_after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let tps = number_after("tps = ").context("pgbench printed no tps")?;
    let processed = number_after("number of transactions actually processed: ")
        .unwrap_or(tps * args.seconds as f64);
    let latency = number_after("latency average = ").unwrap_or(0.0);
    Ok(Figures {
        per_sec: tps,
        // pgbench gives the average latency only: shown as p50 (p99 "-").
        p50_ms: latency,
        p99_ms: f64::NAN,
        failures: 0,
        db_cpu_us: Some(cpu / processed.max(1.0) * 1e6),
        app_cpu_us: None,
    })
}

/// The SQLite ceiling: one connection committing one single-row INSERT per transaction.
async fn sqlite_ceiling(args: &Args) -> anyhow::Result<Figures> {
    let dir = tempdir()?;
    let path = dir.join("ceiling.db");
    let settings = Settings {
        database_url: format!("sqlite://{}", path.display()),
        max_connections: 1,
        ..Settings::default()
    };
    Store::open(&settings).await?.close().await;
    let seconds = args.seconds;
    let path_for_c = path.clone();
    let (inserts, elapsed, latencies) =
        tokio::task::spawn_blocking(move || c_client::insert_loop(&path_for_c, seconds)).await??;
    std::fs::remove_dir_all(&dir).ok();
    Ok(Figures {
        per_sec: inserts as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        failures: 0,
        db_cpu_us: None,
        app_cpu_us: None,
    })
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("eventshop_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The SQLite C API, called directly: the fastest a client can commit single-row INSERTs.
#[allow(unsafe_code)]
mod c_client {
    use std::ffi::{CStr, CString};
    use std::path::Path;
    use std::time::{Duration, Instant};

    use anyhow::bail;
    use libsqlite3_sys as ffi;

    struct Db(*mut ffi::sqlite3);

    impl Drop for Db {
        fn drop(&mut self) {
            // SAFETY: the handle came from sqlite3_open_v2 and is closed once.
            unsafe { ffi::sqlite3_close(self.0) };
        }
    }

    fn check(db: &Db, code: i32, what: &str) -> anyhow::Result<()> {
        if code == ffi::SQLITE_OK || code == ffi::SQLITE_DONE || code == ffi::SQLITE_ROW {
            return Ok(());
        }
        // SAFETY: the handle is open; sqlite3_errmsg answers a NUL-terminated string.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.0)) };
        bail!("{what}: {}", message.to_string_lossy())
    }

    fn exec(db: &Db, sql: &str) -> anyhow::Result<()> {
        let sql = CString::new(sql)?;
        // SAFETY: open handle, NUL-terminated SQL, no callback.
        let code = unsafe {
            ffi::sqlite3_exec(
                db.0,
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        check(db, code, "exec")
    }

    /// Inserts for `seconds`: answers the inserts, the elapsed seconds and the latencies (ms).
    pub fn insert_loop(path: &Path, seconds: u64) -> anyhow::Result<(u64, f64, Vec<f64>)> {
        let file = CString::new(path.to_string_lossy().as_bytes())?;
        let mut handle = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and an out-pointer for the handle.
        let code = unsafe {
            ffi::sqlite3_open_v2(
                file.as_ptr(),
                &mut handle,
                ffi::SQLITE_OPEN_READWRITE,
                std::ptr::null(),
            )
        };
        let db = Db(handle);
        check(&db, code, "open")?;
        exec(
            &db,
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )?;
        let sql = CString::new(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ('bench', 'c-client', ?1, \
             'FundsDeposited', '1', ?2, ?3)",
        )?;
        let mut statement = std::ptr::null_mut();
        // SAFETY: open handle, NUL-terminated SQL, an out-pointer for the statement.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(db.0, sql.as_ptr(), -1, &mut statement, std::ptr::null_mut())
        };
        check(&db, code, "prepare")?;
        let payload = CString::new(super::PAYLOAD)?;
        let metadata = CString::new(super::METADATA)?;
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut sequence: i64 = 0;
        let mut failed = None;
        while Instant::now() < deadline {
            sequence += 1;
            let t = Instant::now();
            // SAFETY: the statement is prepared on the open handle; the texts outlive the step
            // (SQLITE_STATIC is fine: they live until the loop ends).
            let code = unsafe {
                ffi::sqlite3_bind_int64(statement, 1, sequence);
                ffi::sqlite3_bind_text(statement, 2, payload.as_ptr(), -1, ffi::SQLITE_STATIC());
                ffi::sqlite3_bind_text(statement, 3, metadata.as_ptr(), -1, ffi::SQLITE_STATIC());
                let code = ffi::sqlite3_step(statement);
                ffi::sqlite3_reset(statement);
                code
            };
            if code != ffi::SQLITE_DONE {
                failed = Some(code);
                break;
            }
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let elapsed = started.elapsed().as_secs_f64();
        // SAFETY: the statement is finalized once, before the handle closes.
        unsafe { ffi::sqlite3_finalize(statement) };
        if let Some(code) = failed {
            check(&db, code, "insert")?;
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        Ok((
            sequence.max(1) as u64 - u64::from(failed.is_some()),
            elapsed,
            latencies,
        ))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

// ---- eventshop as a child process ----

/// The child, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn eventshop(
    bin: &Path,
    subcommand: &str,
    args: &Args,
    round: usize,
) -> anyhow::Result<Figures> {
    let (url, scratch, dir) = if args.sqlite {
        let dir = tempdir()?;
        (
            format!("sqlite://{}", dir.join("eventshop.db").display()),
            None,
            Some(dir),
        )
    } else {
        let scratch = Scratch::create("eventshop_bench").await?;
        (scratch.url.clone(), Some(scratch), None)
    };
    let figures = drive(bin, subcommand, args, round, &url).await;
    if let Some(scratch) = scratch {
        scratch.drop_now().await?;
    }
    if let Some(dir) = dir {
        std::fs::remove_dir_all(dir).ok();
    }
    figures
}

async fn drive(
    bin: &Path,
    subcommand: &str,
    args: &Args,
    round: usize,
    url: &str,
) -> anyhow::Result<Figures> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(bin)
            .arg(subcommand)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", url)
            .env("EVENTSHOP_MAX_CONNECTIONS", (args.clients + 8).to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?,
    );
    let pid = server.0.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("eventshop {subcommand} did not answer /healthz within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One account per client, so clients do not contend on one wallet.
    let mut accounts = Vec::new();
    for i in 0..args.clients {
        let answer: serde_json::Value = client
            .post(format!("{base}/api/v1/accounts"))
            .json(&json!({
                "email": format!("bench{round}-{i}@example.com"),
                "password": "bench password",
                "name": "Bench"
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        accounts.push((
            answer["account_id"]
                .as_str()
                .context("account_id")?
                .to_owned(),
            answer["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned(),
        ));
    }
    // Let `serve`'s projectors and saga catch up with the registrations first.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (db_before, app_before) = (postgres_cpu(), process_cpu(pid));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (id, token) in accounts {
        let client = client.clone();
        let url = format!("{base}/api/v1/accounts/{id}/deposits");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"amount": 100, "currency": "EUR"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (db_cpu, app_cpu) = (postgres_cpu() - db_before, process_cpu(pid) - app_before);
    drop(server);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let done = latencies.len().max(1) as f64;
    Ok(Figures {
        per_sec: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        failures,
        db_cpu_us: (!args.sqlite).then(|| db_cpu / done * 1e6),
        app_cpu_us: Some(app_cpu / done * 1e6),
    })
}
