//! The README's consumer example (`relay/examples/relay_consumer.rs`), run as the binary it is
//! against a real relay and `nats-server -js`: it prints every relayed event once, in order,
//! with its public body, and a second run of the same durable consumer resumes after it.

use std::process::{Command, Stdio};
use std::time::Duration;

use eventshop_tests::nats::{stream_count, NatsServer};
use eventshop_tests::projections::{deposit, register};
use eventshop_tests::TestStore;
use eventstore_config::CommandBus;
use relay::{RelayMetrics, RelayOptions};
use serde_json::Value;

/// Builds the example (a no-op when it is up to date) and returns its path.
fn example_binary() -> std::path::PathBuf {
    // Only the environment a shell would have: the variables cargo sets for this test (the
    // package's, the linker's) would make it see a different build and recompile.
    let keep = |name: &str| {
        matches!(
            name,
            "PATH" | "HOME" | "USER" | "TMPDIR" | "CARGO_HOME" | "CARGO_TARGET_DIR"
        ) || name.starts_with("RUSTUP_")
    };
    let status = Command::new(env!("CARGO"))
        .env_clear()
        .envs(std::env::vars().filter(|(name, _)| keep(name)))
        .args([
            "build",
            "--quiet",
            "--locked",
            "-p",
            "relay",
            "--example",
            "relay_consumer",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the example failed");
    let exe = std::env::current_exe().expect("the test binary");
    // target/<profile>/deps/<test> → target/<profile>/examples/relay_consumer
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("the target folder")
        .join("examples")
        .join("relay_consumer")
}

fn consume(binary: &std::path::Path, url: &str, args: &[&str]) -> Vec<Value> {
    let output = Command::new(binary)
        .args(["--url", url, "--durable", "readme"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the consumer example");
    assert!(
        output.status.success(),
        "the example failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_relayed_events_when_the_readme_consumer_example_runs_then_it_prints_each_once_in_order(
) {
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let test = TestStore::sqlite().await;
    let nats = NatsServer::start();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let ann = register(&bus, "ann@example.com", domain::account::Role::Customer).await;
    for amount in [100, 200, 300] {
        deposit(&bus, ann, amount).await;
    }
    let mut settings = test.settings.clone();
    settings.nats_url = Some(nats.url());
    let options = RelayOptions::from_settings(&settings, &test.store).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(relay::run(
        test.store.clone(),
        options,
        RelayMetrics::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stream_count(&nats.url(), "EVENTSHOP").await < 5 {
        assert!(std::time::Instant::now() < deadline, "not relayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let url = nats.url();
    let lines = tokio::task::spawn_blocking({
        let (binary, url) = (binary.clone(), url.clone());
        move || consume(&binary, &url, &["--idle-secs", "2"])
    })
    .await
    .unwrap();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["msg_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("account:{ann}:1"),
            format!("wallet:{ann}:1"),
            format!("wallet:{ann}:2"),
            format!("wallet:{ann}:3"),
            format!("wallet:{ann}:4"),
        ]
    );
    assert_eq!(lines[0]["event_type"], "AccountRegistered");
    assert_eq!(
        lines[0]["subject"],
        format!("eventshop.account.{ann}.AccountRegistered")
    );
    assert!(lines[0]["body"].to_string().contains("ann@example.com"));
    assert!(!lines[0]["body"].to_string().contains("password_hash"));
    let positions: Vec<i64> = lines
        .iter()
        .map(|l| l["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));

    // It acknowledged everything it printed…
    let client = async_nats::connect(&url).await.expect("connect");
    let stream = async_nats::jetstream::new(client)
        .get_stream("EVENTSHOP")
        .await
        .expect("the stream");
    let info = stream.consumer_info("readme").await.expect("the consumer");
    assert_eq!(
        info.num_ack_pending, 0,
        "every printed event is acknowledged"
    );
    assert_eq!(info.ack_floor.stream_sequence, 5);

    // …so the durable consumer resumes after it.
    deposit(&bus, ann, 400).await;
    let more = tokio::task::spawn_blocking(move || consume(&binary, &url, &["--count", "1"]))
        .await
        .unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0]["msg_id"], format!("wallet:{ann}:5"));

    let _ = stop.send(());
    relay.await.unwrap().unwrap();
}
