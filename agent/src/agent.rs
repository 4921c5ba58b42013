//! The agent's loop: collect, deliver (spooled reports first, oldest first), wait for the next
//! tick.
//!
//! Order is kept: while anything is spooled, the new report goes behind it in the spool rather
//! than straight to the hub. A replay takes at most one interval per tick, so collection keeps
//! its pace while a long backlog drains. Ticks are counted from the start, not from the end of
//! the previous cycle, so the cadence does not drift; missed ticks are skipped, not caught up.

use std::time::{Duration, Instant, SystemTime};

use crate::collect::{Collector, Settings};
use crate::config::Config;
use crate::report::Report;
use crate::shutdown::Shutdown;
use crate::spool::{ReadError, Spool};
use crate::transport::{Client, Outcome, Trust};
use crate::{debug, error, info, warn};

/// Longest pause between the two samples of the first report.
pub const MAX_BASELINE: Duration = Duration::from_secs(1);

pub fn collector(cfg: &Config) -> Result<Collector, String> {
    let host = match &cfg.host {
        Some(h) => h.clone(),
        None => crate::collect::system_host_name()
            .ok_or("cannot tell this system's host name: set `host` (or --host)")?,
    };
    Ok(Collector::new(Settings {
        host,
        inventory_interval: cfg.inventory_interval,
        units_interval: cfg.units_interval,
        smart_interval: cfg.smart_interval,
        smartctl: cfg.smartctl.clone(),
    }))
}

/// `--once`: one report, pretty JSON, nothing sent.
pub fn once(cfg: &Config) -> Result<String, String> {
    let mut c = collector(cfg)?;
    let report = c.collect(cfg.interval, MAX_BASELINE.min(cfg.interval), 0);
    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())
}

/// Delivery state between cycles.
pub struct Agent {
    client: Client,
    spool: Option<Spool>,
    cfg: Config,
    fast: bool,
    /// The hub's last state as logged, so an outage is logged once, not every cycle.
    reachable: Option<bool>,
}

/// Runs until SIGTERM/SIGINT. Errors are startup problems only.
pub fn run(cfg: Config, shutdown: &Shutdown) -> Result<(), String> {
    let (Some(hub), Some(token)) = (cfg.hub.clone(), cfg.token.clone()) else {
        return Err("hub and token are required".into());
    };
    let trust = match (cfg.pin_sha256, &cfg.ca_file) {
        (Some(pin), _) => Trust::Pin(pin),
        (None, Some(ca)) => Trust::CaFile(ca.clone()),
        (None, None) => Trust::System,
    };
    if !hub.tls && !hub.is_loopback() {
        warn!(
            "{} is plain HTTP: the token and reports cross the network unencrypted",
            hub.base()
        );
    }
    if !hub.tls && (cfg.pin_sha256.is_some() || cfg.ca_file.is_some()) {
        warn!("ca_file/pin_sha256 are ignored: the hub URL is not https");
    }
    let client = Client::new(hub.clone(), &token, &trust, cfg.timeout)?;
    let spool = match Spool::open(&cfg.spool_dir, cfg.spool_max_bytes, cfg.spool_max_age) {
        Ok(s) => {
            if !s.is_empty() {
                info!("{} reports waiting in {}", s.len(), cfg.spool_dir.display());
            }
            Some(s)
        }
        Err(e) => {
            error!(
                "spool {} unusable ({e}): reports the hub does not take now will be lost",
                cfg.spool_dir.display()
            );
            None
        }
    };
    let mut collector = collector(&cfg)?;
    info!(
        "reporting {} to {} every {:?} (fast {:?})",
        collector.host(),
        hub.base(),
        cfg.interval,
        cfg.fast_interval
    );
    let mut agent = Agent {
        client,
        spool,
        cfg,
        fast: false,
        reachable: None,
    };
    let mut next = Instant::now();
    while !shutdown.requested() {
        let interval = agent.interval();
        let dropped = agent.spool.as_ref().map_or(0, Spool::dropped);
        let mut report = collector.collect(interval, MAX_BASELINE.min(interval), dropped);
        agent.deliver(&mut report, shutdown);

        let interval = agent.interval();
        next += interval;
        let now = Instant::now();
        while next <= now {
            next += interval;
        }
        if shutdown.wait(next - now) {
            break;
        }
    }
    agent.client.close();
    info!("stopping");
    Ok(())
}

impl Agent {
    fn interval(&self) -> Duration {
        if self.fast {
            self.cfg.fast_interval
        } else {
            self.cfg.interval
        }
    }

    fn note_answer(&mut self, fast: Option<bool>) {
        if self.reachable != Some(true) {
            if self.reachable.is_some() {
                info!("hub reachable again");
            }
            self.reachable = Some(true);
        }
        if let Some(f) = fast
            && f != self.fast
        {
            info!(
                "hub asks for the {} interval",
                if f { "fast" } else { "normal" }
            );
            self.fast = f;
        }
    }

    fn note_failure(&mut self, why: &str) {
        if self.reachable != Some(false) {
            warn!("hub unreachable ({why}); spooling reports until it answers");
            self.reachable = Some(false);
        } else {
            debug!("hub still unreachable: {why}");
        }
    }

    /// Replays the spool, then sends or spools `report`. The drop count is read after the replay
    /// so that reports refused during it travel with this very report, not the next one.
    pub fn deliver(&mut self, report: &mut Report, shutdown: &Shutdown) {
        let blocked = !self.replay(shutdown);
        if let Some(s) = &self.spool {
            report.dropped_reports = s.dropped();
        }
        let body = match serde_json::to_vec(&*report) {
            Ok(b) => b,
            Err(e) => {
                error!("report {} not serialisable: {e}", report.id);
                return;
            }
        };
        if !blocked {
            match self.client.post_report(&body) {
                Outcome::Accepted { fast } => {
                    debug!("report {} delivered", report.id);
                    self.note_answer(fast);
                    self.settle(report.dropped_reports);
                    return;
                }
                Outcome::Refused { status, message } => {
                    // Not spooled: the hub would refuse it again. Its carried count stays owed.
                    error!("hub refused report {} with {status}: {message}", report.id);
                    if let Some(s) = &mut self.spool {
                        s.count_dropped(1);
                    }
                    return;
                }
                Outcome::Failed(why) => self.note_failure(&why),
            }
        }
        match &mut self.spool {
            Some(s) => match s.push(&body, SystemTime::now()) {
                Ok(_) => {
                    debug!("report {} spooled ({} waiting)", report.id, s.len());
                    s.settle_dropped(report.dropped_reports);
                }
                Err(e) => {
                    error!("report {} lost: cannot write to the spool: {e}", report.id);
                    s.count_dropped(1);
                }
            },
            None => error!("report {} lost: no spool", report.id),
        }
    }

    fn settle(&mut self, carried: u64) {
        if let Some(s) = &mut self.spool {
            s.settle_dropped(carried);
        }
    }

    /// Sends spooled reports, oldest first, within one interval. True when the spool is empty
    /// afterwards.
    fn replay(&mut self, shutdown: &Shutdown) -> bool {
        let Some(spool) = &mut self.spool else {
            return true;
        };
        if spool.is_empty() {
            return true;
        }
        let deadline = Instant::now() + self.cfg.interval;
        let (mut sent, mut refused) = (0usize, 0usize);
        let mut last_refusal = String::new();
        let mut failure = None;
        while let Some(entry) = spool.oldest() {
            if Instant::now() >= deadline || shutdown.requested() {
                debug!("replay paused, {} left for the next cycle", spool.len());
                break;
            }
            let body = match spool.read(entry) {
                Ok(b) => b,
                Err(ReadError::Corrupt(_) | ReadError::Gone) => continue,
            };
            match self.client.post_report(&body) {
                Outcome::Accepted { fast } => {
                    spool.remove(entry);
                    sent += 1;
                    if let Some(f) = fast {
                        self.fast = f;
                    }
                }
                Outcome::Refused { status, message } => {
                    // Logged once per replay below: a revoked token refuses the whole backlog.
                    spool.discard(entry);
                    refused += 1;
                    last_refusal = format!("{status}: {message}");
                }
                Outcome::Failed(why) => {
                    failure = Some(why);
                    break;
                }
            }
        }
        let empty = spool.is_empty();
        if sent > 0 {
            info!("replayed {sent} spooled reports ({} left)", spool.len());
            self.note_answer(None);
        }
        if refused > 0 {
            error!("hub refused {refused} spooled reports, dropped (last answer {last_refusal})");
        }
        if let Some(why) = failure {
            self.note_failure(&why);
        }
        empty
    }
}
