//! The real binary's command line: `--help` texts say what the commands do, and a usage error
//! is one line with a hint and a non-zero exit.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .output()
        .expect("run eventshop");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn given_a_usage_error_when_run_then_one_line_names_the_help_to_read_and_the_exit_is_2() {
    let cases: [(&[&str], &str); 5] = [
        (&["serve", "--x"], "(try 'eventshop serve --help')"),
        (&["--bogus"], "(try 'eventshop --help')"),
        (&[], "(try 'eventshop --help')"),
        (
            &["--log", "warn", "events", "tail", "--limit", "abc"],
            "(try 'eventshop events tail --help')",
        ),
        (
            &["projections", "rebuild"],
            "(try 'eventshop projections rebuild --help')",
        ),
    ];
    for (args, hint) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
        assert!(stderr.trim_end().ends_with(hint), "{args:?}: {stderr:?}");
    }
}

#[test]
fn given_help_when_asked_then_serve_is_described_as_it_runs_today() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let (code, stdout, _) = run(args);
        assert_eq!(code, Some(0));
        assert!(!stdout.contains("once they are wired in"), "{stdout}");
        for part in ["GraphQL", "/graphql", "projector", "saga", "/api/v1"] {
            assert!(
                stdout.contains(part),
                "{args:?} help lacks {part:?}: {stdout}"
            );
        }
    }
}
