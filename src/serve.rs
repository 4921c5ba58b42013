//! `vigie serve`: opens the store, starts the ingestion writer and the HTTP server, and stops
//! them in order so that nothing accepted is lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use vigie_alerts::api::{ApiLimits, RulesFile};
use vigie_alerts::normalize::Limits;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings, SourceDefaults};
use vigie_auth::TokenCache;
use vigie_core::http::unavailable;
use vigie_core::store::Store;

use crate::cli::{load_rules, open_store};
use crate::config::Config;

/// How long a stop waits for the writer to drain the queue.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

fn pipeline_settings(config: &Config) -> PipelineSettings {
    let sources = config
        .sources
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                SourceDefaults {
                    domain: s.domain.clone(),
                    fingerprint: s.fingerprint.clone(),
                },
            )
        })
        .collect::<HashMap<_, _>>();
    PipelineSettings {
        queue_capacity: config.pipeline.queue_capacity,
        batch_max: config.pipeline.batch_max,
        submit_timeout: config.pipeline.submit_timeout,
        domains: config.domains.clone(),
        limits: Limits::default(),
        default_domain: config.pipeline.default_domain.clone(),
        default_level: config.pipeline.default_severity,
        fingerprint: config.pipeline.fingerprint.clone(),
        sources,
        flapping: vigie_alerts::pipeline::Flapping {
            window: config.pipeline.flap_window,
            threshold: config.pipeline.flap_threshold,
        },
    }
}

fn logs_settings(config: &Config) -> vigie_logs::LogsSettings {
    let s = &config.syslog;
    vigie_logs::LogsSettings {
        syslog: s.receiver(),
        retention: vigie_logs::Retention {
            days: s.retention_days,
            max_rows: s.max_rows,
            max_bytes: s.max_bytes,
            interval: s.purge_interval,
            ..vigie_logs::Retention::default()
        },
        batch_size: s.batch_size,
        ..vigie_logs::LogsSettings::default()
    }
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    const SECONDS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    const RECORDS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Suffix("_records".into()), RECORDS)?
        .install_recorder()
        .context("cannot install the metrics recorder")
}

pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = install_metrics()?;
    let store = open_store(&config).await?;
    if let Some(admin) = vigie_auth::ensure_initial_admin(&store).await? {
        // Printed once, on stdout, never logged.
        println!(
            "Initial administrator created: login `{}`, one-time password `{}` (shown only now; change it at first login).",
            admin.login, admin.password
        );
    }
    let console = vigie_console::Console::start(console_settings(&config), &store)
        .await
        .context("cannot start the console")?;
    let rules = load_rules(&config).map_err(|problems| {
        for p in &problems {
            tracing::error!(problem = %p, "Rules file problem.");
        }
        anyhow::anyhow!("the qualification rules have {} problem(s)", problems.len())
    })?;
    tracing::info!(rules = rules.len(), "Qualification rules loaded.");

    let checkpointer = store.spawn_checkpointer();
    let writer_store = store.dedicated_writer().await?;
    let (pipeline, writer) = Pipeline::new(
        writer_store.clone(),
        pipeline_settings(&config),
        Arc::new(rules),
    );
    let writer = tokio::spawn(writer.run());
    // Database sources: one poller per configured source; the backup table's watcher.
    let sources = vigie_sources::Sources::start(
        store.clone(),
        Arc::new(pipeline.clone()),
        source_defs(&config),
    )
    .await;
    // The sources defined in the console, their passwords decrypted in memory only.
    let sources_key = vigie_sources::secrets::KeyStore::from_env(&config.data_dir);
    vigie_sources::defs::launch_stored(&sources, &store, &sources_key).await;
    let backup_watcher = vigie_sources::BackupWatcher::new(
        store.clone(),
        Arc::new(pipeline.clone()),
        vigie_sources::WatcherSettings::default(),
    );
    let backup_notifier = backup_watcher.notifier();
    let (backups_stop, backups_stopped) = tokio::sync::watch::channel(false);
    let backups = tokio::spawn(backup_watcher.run(backups_stopped));
    // Host agents: the watcher that raises "host unreachable" for silent hosts.
    let (hosts_stop, hosts_stopped) = tokio::sync::watch::channel(false);
    let hosts_watcher = vigie_hosts::spawn_watcher(
        store.clone(),
        pipeline.clone(),
        config.hosts.clone(),
        hosts_stopped,
    );
    // Notifications: the worker delivers what the modules queue in the outbox.
    let mut notify_settings = config.notify.clone();
    notify_settings.smtp = config
        .smtp
        .as_ref()
        .map(|s| vigie_notify::settings::SmtpSettings::new(&s.url, &s.from));
    let (notify_stop, notify_stopped) = tokio::sync::watch::channel(false);
    let notify_worker = vigie_notify::spawn_worker(store.clone(), notify_settings, notify_stopped);
    let (feed, feed_task) = vigie_alerts::live::Feed::start(store.clone(), &pipeline);
    // Alerts routed to the people on duty as they are stored; escalation when nobody acknowledges.
    let (oncall_stop, oncall_stopped) = tokio::sync::watch::channel(false);
    let oncall_engine = vigie_oncall::escalation::spawn(
        store.clone(),
        &pipeline,
        config
            .oncall
            .apply(vigie_oncall::escalation::OncallSettings::for_console(
                &console,
            )),
        oncall_stopped,
    );
    let waker = spawn_board_upkeep(store.clone(), feed.clone(), &config);
    // Closed incidents older than `[incidents] archive_after` go to XML files, hourly.
    let incidents_archiver = vigie_incidents::archive::spawn(
        store.clone(),
        config.data_dir.clone(),
        config.incidents_archive_after,
    );
    let reloader = spawn_rules_reloader(pipeline.clone(), config.pipeline.rules_file.clone());
    // The syslog messages: on SQLite in a file of their own (their batches and the alerts'
    // writer then write at the same time), written through one connection of that file.
    let messages = vigie_logs::MessagesStore::open(&store)
        .await
        .context("cannot open the syslog messages' store")?;
    // Its own file's checkpoints (`None` on PostgreSQL, whose database is the hub's).
    let messages_checkpointer = messages.store().spawn_checkpointer();
    let messages_writer = messages.store().dedicated_writer().await?;
    let logs = vigie_logs::start(
        messages_writer.clone(),
        Arc::new(pipeline.clone()),
        &logs_settings(&config),
    )
    .await
    .context("cannot start the syslog receiver")?;
    let upkeep = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        })
    };

    let listener = std::net::TcpListener::bind(config.http.listen)
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let address = listener.local_addr()?;
    let workers = match config.http.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let state = AppState {
        domains: web::Data::new(config.domains.clone()),
        store: web::Data::new(store.clone()),
        messages: web::Data::new(messages.clone()),
        pipeline: web::Data::new(pipeline.clone()),
        metrics: web::Data::new(metrics),
        limits: web::Data::new(ApiLimits {
            max_body_bytes: config.http.max_body_bytes,
            max_batch: config.http.max_batch,
        }),
        rules_file: web::Data::new(RulesFile(config.pipeline.rules_file.clone())),
        tokens: web::Data::new(TokenCache::default()),
        console: web::Data::new(console),
        feed: web::Data::new(feed),
        sources: web::Data::new(sources.clone()),
        backups: web::Data::new(backup_notifier),
        sources_key: web::Data::new(sources_key),
        hosts: web::Data::new(config.hosts.clone()),
        incidents: web::Data::new(vigie_incidents::IncidentsSettings::new(
            config.data_dir.clone(),
        )),
        incidents_archive: web::Data::new(vigie_incidents::archive::ArchiveSettings {
            archive_after: config.incidents_archive_after,
        }),
    };
    let feed_to_close = state.feed.clone();
    let server = HttpServer::new(move || app(state.clone()))
        .workers(workers)
        .shutdown_timeout(DRAIN_TIMEOUT.as_secs())
        .disable_signals()
        .listen(listener)?
        .run();
    // SIGTERM or SIGINT: the live streams end first (they never finish on their own), then the
    // server stops taking requests and finishes those under way.
    let handle = server.handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!(
            "Stop requested; closing the live streams and finishing the requests under way."
        );
        feed_to_close.close();
        handle.stop(true).await;
    });
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        backend = store.backend().name(),
        "Vigie listening on http://{address}"
    );
    server.await.context("the HTTP server failed")?;

    // The syslog receiver first: what its connections accepted is stored and submitted to the
    // pipeline before the pipeline's writer drains.
    logs.shutdown().await;

    // The server has stopped taking requests; let the writer drain what was accepted.
    reloader.abort();
    upkeep.abort();
    waker.abort();
    incidents_archiver.abort();
    sources.stop(Duration::from_secs(10)).await;
    drop(sources);
    let _ = backups_stop.send(true);
    let _ = backups.await;
    let _ = hosts_stop.send(true);
    let _ = hosts_watcher.await;
    let _ = oncall_stop.send(true);
    let _ = oncall_engine.await;
    // The sends under way finish and are recorded; the rest waits in the outbox.
    let _ = notify_stop.send(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, notify_worker).await;
    drop(pipeline);
    match tokio::time::timeout(DRAIN_TIMEOUT, writer).await {
        Ok(_) => tracing::info!("Ingestion queue drained."),
        Err(_) => tracing::error!("The ingestion queue did not drain in time."),
    }
    feed_task.abort();
    for task in [checkpointer, messages_checkpointer].into_iter().flatten() {
        task.abort();
    }
    messages_writer.close().await;
    messages.store().close().await;
    writer_store.close().await;
    store.close().await;
    tracing::info!("Vigie stopped.");
    Ok(())
}

/// What every HTTP worker shares.
#[derive(Clone)]
struct AppState {
    domains: web::Data<vigie_core::domain::Domains>,
    store: web::Data<Store>,
    messages: web::Data<vigie_logs::MessagesStore>,
    pipeline: web::Data<Pipeline>,
    metrics: web::Data<PrometheusHandle>,
    limits: web::Data<ApiLimits>,
    rules_file: web::Data<RulesFile>,
    tokens: web::Data<TokenCache>,
    console: web::Data<vigie_console::Console>,
    feed: web::Data<vigie_alerts::live::Feed>,
    sources: web::Data<vigie_sources::Sources>,
    backups: web::Data<vigie_sources::BackupNotifier>,
    sources_key: web::Data<vigie_sources::secrets::KeyStore>,
    hosts: web::Data<vigie_hosts::HostsSettings>,
    incidents: web::Data<vigie_incidents::IncidentsSettings>,
    incidents_archive: web::Data<vigie_incidents::archive::ArchiveSettings>,
}

/// The configured `[[sources]]` as the sources module runs them.
pub(crate) fn source_defs(config: &Config) -> Vec<vigie_sources::SourceDef> {
    config
        .sources
        .iter()
        .map(|s| vigie_sources::SourceDef {
            name: s.name.clone(),
            kind: s.kind.as_str().to_owned(),
            url: s.url.clone(),
            interval: s.interval,
            enabled: s.enabled,
            domain: s.domain.clone(),
        })
        .collect()
}

/// The board's upkeep: deferred alerts coming back when due, maintenance windows opening and
/// closing, flapping marks settling, and (hourly) the purge of old archived and deleted alerts.
fn spawn_board_upkeep(
    store: Store,
    feed: vigie_alerts::live::Feed,
    config: &Config,
) -> tokio::task::JoinHandle<()> {
    use vigie_alerts::actions;
    let flap_window = config.pipeline.flap_window;
    let retention = actions::Retention {
        archived: config.pipeline.archive_retention,
        deleted: config.pipeline.deleted_retention,
        batch: 1000,
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut last_purge: Option<Instant> = None;
        loop {
            tick.tick().await;
            let mut changed = Vec::new();
            match actions::wake_deferred(&store).await {
                Ok(ids) => changed.extend(ids),
                Err(e) => tracing::warn!(error = %e, "Cannot bring deferred alerts back."),
            }
            match vigie_alerts::maintenance::refresh(&store, None).await {
                Ok(ids) => changed.extend(ids),
                Err(e) => tracing::warn!(error = %e, "Cannot apply the maintenance windows."),
            }
            match actions::settle_flapping(&store, flap_window).await {
                Ok(ids) => changed.extend(ids),
                Err(e) => tracing::warn!(error = %e, "Cannot settle flapping alerts."),
            }
            feed.changed(changed);
            if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_purge = Some(Instant::now());
                if let Err(e) = actions::purge(&store, retention).await {
                    tracing::warn!(error = %e, "Cannot purge old archived alerts.");
                }
            }
        }
    })
}

fn console_settings(config: &Config) -> vigie_console::ConsoleSettings {
    let c = &config.console;
    vigie_console::ConsoleSettings {
        default_lang: vigie_console::Lang::parse(&c.default_language)
            .unwrap_or(vigie_console::Lang::Fr),
        timezone: c.timezone.parse().unwrap_or(chrono_tz::UTC),
        sessions: vigie_auth::session::SessionPolicy {
            idle: c.session_idle,
            lifetime: c.session_lifetime,
        },
        lockout: vigie_auth::login::LockoutPolicy {
            threshold: c.lockout_threshold,
            base: c.lockout_base,
            max: c.lockout_max,
        },
        links: vigie_auth::LinkPolicy {
            activation_ttl: c.activation_ttl,
        },
        public_url: config.http.public_url.clone(),
        listen: config.http.listen.to_string(),
    }
}

fn app(
    state: AppState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state.store.clone())
        .app_data(state.messages.clone())
        .app_data(state.domains.clone())
        .app_data(state.pipeline.clone())
        .app_data(state.metrics.clone())
        .app_data(state.limits.clone())
        .app_data(state.rules_file.clone())
        .app_data(state.tokens.clone())
        .app_data(state.console.clone())
        .app_data(state.feed.clone())
        .app_data(state.sources.clone())
        .app_data(state.backups.clone())
        .app_data(state.sources_key.clone())
        .app_data(state.incidents.clone())
        // Incidents and the knowledge base meet here (neither knows the other).
        .app_data(web::Data::new(crate::knowledge::draft_source()))
        .app_data(web::Data::new(crate::knowledge::suggest_fn()))
        .app_data(state.incidents_archive.clone())
        .app_data(state.hosts.clone())
        .wrap_fn(|req, srv| {
            let call = srv.call(req);
            async move {
                let mut response = call.await?;
                vigie_console::security_headers(response.headers_mut());
                Ok(response)
            }
        })
        .wrap_fn(|req, srv| {
            let started = Instant::now();
            let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
            let method = req.method().to_string();
            let call = srv.call(req);
            async move {
                let response = call.await?;
                let status = response.status().as_u16().to_string();
                metrics::histogram!("vigie_http_request_seconds", "route" => route.clone())
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("vigie_http_requests_total", "route" => route, "method" => method, "status" => status)
                    .increment(1);
                Ok(response)
            }
        })
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_text))
        .configure(vigie_alerts::act_api::configure)
        .configure(vigie_alerts::api::configure)
        .configure(vigie_alerts::pages::configure)
        .configure(vigie_logs::configure)
        .configure(vigie_sources::configure)
        .configure(vigie_sources::admin::configure)
        .configure(vigie_hosts::configure)
        .configure(vigie_hosts::pages::configure)
        .configure(vigie_notify_pages::configure)
        .configure(vigie_oncall::api::configure)
        .configure(vigie_oncall::pages::configure)
        .configure(vigie_oncall::routing::configure)
        // Before the incidents' routes: `/incidents/archives` is not an incident id.
        .configure(vigie_incidents::exports_routes::configure)
        .configure(vigie_incidents::configure)
        .configure(vigie_kb::configure)
        .configure(vigie_console::configure)
        .default_service(web::to(vigie_console::not_found))
}

/// Lets an administrator reload the rules with `kill -HUP`.
fn spawn_rules_reloader(
    pipeline: Pipeline,
    file: Option<std::path::PathBuf>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("Cannot listen for SIGHUP: reload rules through the API.");
                return;
            };
            while hangups.recv().await.is_some() {
                match pipeline.reload_rules(file.as_deref()) {
                    Ok(count) => {
                        tracing::info!(rules = count, "Qualification rules reloaded (SIGHUP).")
                    }
                    Err(problems) => {
                        for p in &problems {
                            tracing::error!(problem = %p, "Rules file problem; the rules in force are unchanged.");
                        }
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (pipeline, file);
        }
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(store: web::Data<Store>) -> HttpResponse {
    match store.ping(Duration::from_secs(2)).await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "Readiness check failed.");
            unavailable("the store is unavailable")
        }
    }
}

async fn metrics_text(
    metrics: web::Data<PrometheusHandle>,
    pipeline: web::Data<Pipeline>,
) -> HttpResponse {
    metrics::gauge!("vigie_ingest_queue_depth").set(pipeline.queue_depth() as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
