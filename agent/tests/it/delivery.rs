//! Delivery over plain HTTP: token, spool and replay, adaptive interval, refusals.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use crate::hub::{Answer, FakeHub, Received};
use crate::{Agent, BIN, TOKEN, seq, spooled, wait_until};

const LONG: Duration = Duration::from_secs(15);

/// Every report of one run, each once, in collection order, none missing.
fn assert_complete_and_ordered(received: &[Received]) {
    let ids: Vec<&str> = received.iter().map(|r| r.report.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate ids: {ids:?}");
    let seqs: Vec<u64> = ids.iter().map(|i| seq(i)).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "reports lost or out of order");
    assert!(
        received
            .windows(2)
            .all(|w| w[0].report.collected_at <= w[1].report.collected_at)
    );
}

#[test]
fn reports_arrive_with_the_bearer_token() {
    let hub = FakeHub::start(None);
    let mut agent = Agent::start("token", &hub.url(), "");
    assert!(
        wait_until(LONG, || hub.received().len() >= 3),
        "{}",
        agent.log()
    );
    let status = agent.stop();
    assert!(
        status.success(),
        "SIGTERM ends the agent cleanly: {status:?}\n{}",
        agent.log()
    );

    let got = hub.received();
    for r in &got {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.path, "/api/v1/agent/report");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.report.host, "it-host");
        assert_eq!(r.report.interval_secs, 0.2);
        assert_eq!(r.report.dropped_reports, 0);
    }
    assert!(got[0].report.inventory.is_some(), "inventory at start");
    assert!(
        got[1..].iter().all(|r| r.report.inventory.is_none()),
        "not in every report"
    );
    assert_complete_and_ordered(&got);
    assert_eq!(spooled(&agent.spool()), 0);
}

#[test]
fn hub_outage_spools_and_replays_in_order() {
    let mut hub = FakeHub::start(None);
    let mut agent = Agent::start("outage", &hub.url(), "");
    assert!(
        wait_until(LONG, || hub.received().len() >= 2),
        "{}",
        agent.log()
    );

    hub.stop();
    let spool = agent.spool();
    assert!(
        wait_until(LONG, || spooled(&spool) >= 4),
        "reports spooled while the hub is down\n{}",
        agent.log()
    );
    let before = hub.received().len();

    hub.restart();
    assert!(
        wait_until(LONG, || spooled(&spool) == 0
            && hub.received().len() >= before + 5),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());

    let got = hub.received();
    assert_complete_and_ordered(&got);
    assert_eq!(spooled(&spool), 0, "nothing left behind");
    assert!(
        got.iter().all(|r| r.report.dropped_reports == 0),
        "nothing dropped"
    );
    let log = agent.log();
    assert!(
        log.contains("hub unreachable") && log.contains("replayed"),
        "{log}"
    );
}

#[test]
fn server_errors_are_spooled_then_replayed() {
    let hub = FakeHub::start(None);
    hub.set_answer(Answer::Status(503));
    let mut agent = Agent::start("503", &hub.url(), "");
    let spool = agent.spool();
    assert!(wait_until(LONG, || spooled(&spool) >= 3), "{}", agent.log());
    assert!(hub.received().is_empty());

    hub.set_answer(Answer::Accept { fast: None });
    assert!(
        wait_until(LONG, || spooled(&spool) == 0 && hub.received().len() >= 4),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    assert_complete_and_ordered(&hub.received());
}

#[test]
fn a_fast_answer_shortens_the_interval_until_the_hub_says_false() {
    let hub = FakeHub::start(None);
    hub.set_answer(Answer::Accept { fast: Some(true) });
    let mut agent = Agent::start("fast", &hub.url(), "interval = \"2s\"");
    // At the normal 2 s interval, six reports would take over ten seconds.
    assert!(
        wait_until(LONG, || hub.received().len() >= 6),
        "{}",
        agent.log()
    );
    let got = hub.received();
    let span = got[5].at - got[1].at;
    assert!(
        span < Duration::from_millis(3000),
        "4 fast intervals took {span:?}"
    );
    assert_eq!(
        got[0].report.interval_secs, 2.0,
        "first report: before any answer"
    );
    assert!(got[1..6].iter().all(|r| r.report.interval_secs == 0.2));

    hub.set_answer(Answer::Accept { fast: Some(false) });
    let n = hub.received().len();
    // The first report answered `false` is followed by one at the normal pace.
    assert!(
        wait_until(LONG, || hub.received().len() >= n + 2),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    let got = hub.received();
    let last = &got[got.len() - 1];
    let before = &got[got.len() - 2];
    assert!(
        last.at - before.at >= Duration::from_millis(1500),
        "normal pace again: {:?}",
        last.at - before.at
    );
    assert_eq!(last.report.interval_secs, 2.0);
}

#[test]
fn refused_reports_are_not_spooled_but_counted() {
    let hub = FakeHub::start(None);
    hub.set_answer(Answer::Status(401));
    let mut agent = Agent::start("401", &hub.url(), "");
    let spool = agent.spool();
    assert!(wait_until(LONG, || hub.requests() >= 3), "{}", agent.log());
    assert_eq!(spooled(&spool), 0, "a refused report is not kept");
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent keeps running"
    );

    let refused = hub.requests();
    hub.set_answer(Answer::Accept { fast: None });
    assert!(
        wait_until(LONG, || !hub.received().is_empty()),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    let first = &hub.received()[0];
    assert!(
        first.report.dropped_reports >= refused as u64,
        "{} refused, {} counted",
        refused,
        first.report.dropped_reports
    );
    assert!(
        hub.received()[1..]
            .iter()
            .all(|r| r.report.dropped_reports == 0),
        "counted once"
    );
    assert!(agent.log().contains("401"));
}

#[test]
fn spooled_reports_refused_on_replay_are_dropped_and_counted() {
    let hub = FakeHub::start(None);
    hub.set_answer(Answer::Status(503));
    let mut agent = Agent::start("replay401", &hub.url(), "");
    let spool = agent.spool();
    assert!(wait_until(LONG, || spooled(&spool) >= 3), "{}", agent.log());

    // The token was revoked meanwhile: the backlog is refused, not kept forever.
    hub.set_answer(Answer::Status(401));
    let requests = hub.requests();
    assert!(
        wait_until(LONG, || spooled(&spool) == 0
            && hub.requests() >= requests + 3),
        "{}",
        agent.log()
    );
    let refused = hub.requests() - requests;

    hub.set_answer(Answer::Accept { fast: None });
    assert!(
        wait_until(LONG, || !hub.received().is_empty()),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    let counted: u64 = hub
        .received()
        .iter()
        .map(|r| r.report.dropped_reports)
        .sum();
    assert!(
        counted >= refused as u64,
        "{refused} refused, {counted} counted"
    );
    assert!(agent.log().contains("hub refused"), "{}", agent.log());
}

#[test]
fn a_corrupt_spool_file_is_set_aside_and_the_rest_replayed() {
    // A report left by an earlier run (as `--once` prints it), then a corrupt file behind it.
    let out = Command::new(BIN)
        .args(["--once", "--host", "it-host"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let earlier: vigie_agent::report::Report = serde_json::from_slice(&out.stdout).unwrap();
    let hub = FakeHub::start(None);
    let mut agent = Agent::start_with("corrupt", &hub.url(), "", |spool| {
        std::fs::write(spool.join("00000000000000000001.json"), &out.stdout).unwrap();
        std::fs::write(spool.join("00000000000000000002.json"), b"\0\0not json").unwrap();
    });
    assert!(
        wait_until(LONG, || hub.received().len() >= 3),
        "{}",
        agent.log()
    );
    assert!(agent.child.try_wait().unwrap().is_none(), "still running");
    assert!(agent.stop().success());

    let got = hub.received();
    assert_eq!(got[0].report.id, earlier.id, "the earlier report first");
    assert!(got.iter().filter(|r| r.report.id == earlier.id).count() == 1);
    assert_complete_and_ordered(&got[1..]);
    let counted: u64 = got.iter().map(|r| r.report.dropped_reports).sum();
    assert_eq!(counted, 1, "the corrupt file is counted once");
    let aside = std::fs::read_dir(agent.spool().join("corrupt"))
        .unwrap()
        .count();
    assert_eq!(aside, 1);
    assert!(agent.log().contains("is corrupt"), "{}", agent.log());
}
