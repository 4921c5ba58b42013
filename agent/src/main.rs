//! `vigie-agent --hub URL --token TOKEN [--interval 30s] [--once]`: see `--help` and the README.
//!
//! Exit codes: 0 after `--once` or a requested stop, 2 on a configuration error, 1 when the agent
//! cannot start for another reason.

use std::process::ExitCode;

use vigie_agent::config::{self, Config, USAGE};
use vigie_agent::shutdown::Shutdown;

fn main() -> ExitCode {
    let cli = match config::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigie-agent: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cli.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!("vigie-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    vigie_agent::log::init(cli.verbose);
    let cfg = match Config::load(&cli, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(errors) => {
            let origin = cli
                .config
                .as_ref()
                .map(|p| format!(" (config file {})", p.display()))
                .unwrap_or_default();
            eprintln!("vigie-agent: configuration error{origin}:");
            for e in errors {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
    };
    if cfg.once {
        return match vigie_agent::agent::once(&cfg) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigie-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let shutdown = Shutdown::install();
    match vigie_agent::agent::run(cfg, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            vigie_agent::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
