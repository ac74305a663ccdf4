//! eventshop: the one command-line binary. Parses arguments and hands over to `cli`; everything
//! else lives in the workspace crates. Errors end the process with a one-line message and a
//! non-zero exit code; a usage error also names the `--help` to read (exit code 2).
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the projectors and the log reader allocate and
/// free many small values per event, which glibc's malloc serves slowly across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => return cli::usage_error(error),
    };
    cli::init_tracing(&args);
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that many connections (each a
/// file) do not run the server out of descriptors at the common soft default of 1024.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}

/// The error and its causes on one line, leaving out a cause whose text its parent already
/// ends with (drivers often repeat their source in their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
