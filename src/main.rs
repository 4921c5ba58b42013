//! `vigie`, the hub: command line and wiring. Everything the hub does lives in the crates under
//! `modules/` and `connectors/`; this binary only reads the configuration, opens the store and
//! puts the pieces together.

mod cli;
mod config;
mod knowledge;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the hub allocates small short-lived objects at a
/// high rate (records, JSON values, rows); measured on the syslog path (docs/syslog.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // TLS (syslog over TLS, MySQL sources) uses rustls with aws-lc-rs only (no ring in the tree),
    // and the syslog listener passes its provider explicitly.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
