//! The command line of INTERFACE.md: `serve`, `migrate`, `check-config`, `user create`,
//! `token create`, `backup report`, `source test`, `agent token`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigie_alerts::rules::RuleSet;
use vigie_auth::NewUser;
use vigie_core::role::Role;
use vigie_core::store::{Store, StoreOptions, redact_url};

use crate::config::{self, Config};

#[derive(Debug, Parser)]
#[command(
    name = "vigie",
    version,
    about = "Vigie supervision federator: the hub"
)]
pub(crate) struct Cli {
    /// Configuration file (TOML); else $VIGIE_CONFIG; else defaults and environment only.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub: console and API, ingestion, background work.
    Serve,
    /// Apply the store's migrations and exit.
    Migrate,
    /// Validate the configuration and the rules file; print every problem with its key.
    CheckConfig,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Report a backup job's outcome (for the script run after each backup).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Database sources.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Host agents.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Print a new token for a host's agent on stdout (one line); registers the host if new.
    Token {
        #[arg(long)]
        host: String,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Store a backup job's outcome; an error raises a backup alert.
    Report {
        #[arg(long)]
        job: String,
        /// ok or error.
        #[arg(long)]
        status: String,
        #[arg(long)]
        message: Option<String>,
        /// When the job started (RFC 3339).
        #[arg(long)]
        started: Option<String>,
        /// When the job ended (RFC 3339).
        #[arg(long)]
        ended: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SourceCommand {
    /// Run one poll of a configured source without committing; print what it would store.
    Test { name: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. Without --password-stdin a one-time password is generated and printed.
    Create {
        #[arg(long)]
        login: String,
        /// admin, operator, manager, oncall or user.
        #[arg(long)]
        role: Role,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a new API token for the user on stdout (one line, nothing else).
    Create {
        #[arg(long)]
        login: String,
        /// What the token is for, shown in the token list.
        #[arg(long)]
        label: Option<String>,
    },
}

/// Loads the configuration or prints every problem.
fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    config::load(file).map_err(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::anyhow!("the configuration has {} problem(s)", problems.len())
    })
}

/// Opens the store and brings its schema up to date.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
    };
    let store = Store::connect(&options)
        .await
        .with_context(|| format!("cannot open the store {}", redact_url(&options.url)))?;
    store.migrate().await.context("cannot migrate the store")?;
    Ok(store)
}

/// The rules in force at start: the configured file, else the shipped rules.
pub(crate) fn load_rules(config: &Config) -> Result<RuleSet, Vec<String>> {
    let result = match &config.pipeline.rules_file {
        Some(path) => RuleSet::load(path, &config.domains),
        None => RuleSet::shipped(&config.domains),
    };
    result.map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = cli.config.as_deref();
    if let Command::CheckConfig = cli.command {
        return Ok(check_config(file));
    }
    let config = load_config(file)?;
    crate::telemetry::init(&config.log)?;
    match cli.command {
        Command::Serve => crate::serve::serve(config).await?,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.close().await;
            println!("migrations applied to {}", redact_url(&config.database.url));
        }
        Command::CheckConfig => {}
        Command::User(UserCommand::Create {
            login,
            role,
            email,
            password_stdin,
        }) => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from stdin")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (vigie_core::secret::new_password()?, true)
            };
            let store = open_store(&config).await?;
            let user = NewUser {
                login: login.clone(),
                role,
                email,
                display_name: None,
                password: Some(password.clone()),
                must_change_password: generated,
            };
            let result = vigie_auth::create_user(&store, user).await;
            store.close().await;
            result?;
            if generated {
                println!(
                    "created user {login} (role {role}); one-time password: {password} (shown once, to change at first login)"
                );
            } else {
                println!("created user {login} (role {role})");
            }
        }
        Command::Token(TokenCommand::Create { login, label }) => {
            let store = open_store(&config).await?;
            let result = vigie_auth::create_token(&store, &login, label.as_deref()).await;
            store.close().await;
            println!("{}", result?);
        }
        Command::Backup(BackupCommand::Report {
            job,
            status,
            message,
            started,
            ended,
        }) => {
            let report = vigie_sources::backups::check_report(
                Some(&job),
                Some(&status),
                message.as_deref(),
                started.as_deref(),
                ended.as_deref(),
                Some("cli"),
            )
            .map_err(|problems| {
                for p in &problems {
                    eprintln!("--{}: {}", p.field, p.problem);
                }
                anyhow::anyhow!("the backup report has {} problem(s)", problems.len())
            })?;
            let store = open_store(&config).await?;
            let result = vigie_sources::repo::insert_backup(&store, &report).await;
            store.close().await;
            println!("backup report {} stored (job {job}, {status})", result?);
        }
        Command::Source(SourceCommand::Test { name }) => {
            let store = open_store(&config).await?;
            // The configuration file's sources, then the console's (password decrypted).
            let found = match crate::serve::source_defs(&config)
                .into_iter()
                .find(|d| d.name == name)
            {
                Some(def) => Some(def),
                None => {
                    let keys = vigie_sources::secrets::KeyStore::from_env(&config.data_dir);
                    vigie_sources::defs::find_def(&store, &keys, &name)
                        .await
                        .map_err(|e| anyhow::anyhow!("source {name}: {e}"))?
                }
            };
            let Some(def) = found else {
                store.close().await;
                let names: Vec<_> = config.sources.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!(
                    "no source named `{name}` in the configuration (configured: {}) nor in the console",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                );
            };
            let result = vigie_sources::dry_run(&store, &def).await;
            store.close().await;
            let run = result.map_err(|e| anyhow::anyhow!("source {name}: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&run)?);
            if let Some(stopped) = &run.stopped {
                eprintln!("the poll stopped at a row: {stopped}");
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Agent(AgentCommand::Token { host }) => {
            let store = open_store(&config).await?;
            let result = vigie_hosts::repo::create_token(&store, &host).await;
            store.close().await;
            println!("{}", result?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigie check-config`: every problem of the configuration and of the rules file, exit 1 if any.
fn check_config(file: Option<&std::path::Path>) -> ExitCode {
    let config = match config::load(file) {
        Ok(config) => config,
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s) found", problems.len());
            return ExitCode::FAILURE;
        }
    };
    match load_rules(&config) {
        Ok(_) => {
            let origin = config
                .source_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "defaults and environment".into());
            println!("configuration is valid ({origin})");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let file = config
                .pipeline
                .rules_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "shipped rules".into());
            for p in &problems {
                println!("pipeline.rules_file ({file}): {p}");
            }
            println!("{} problem(s) found", problems.len());
            ExitCode::FAILURE
        }
    }
}
