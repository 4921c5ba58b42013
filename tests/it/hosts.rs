//! The host agent's report reaching the console: a real `vigie-agent --once` report pushed with
//! a host token shows on the hosts list and the host's page draws its charts.

use std::path::PathBuf;

use crate::support::{Browser, Env};

fn agent_binary() -> PathBuf {
    // The test binary is target/<profile>/deps/it-…; the agent is built beside it by the
    // workspace build (scripts/test builds every target).
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("vigie-agent"))
        .expect("target dir")
}

#[tokio::test]
async fn an_agent_report_shows_on_the_hosts_list_and_the_host_page() {
    let env = Env::new().await;
    let (code, token, err) = env.run(&["agent", "token", "--host", "web-1"], None).await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert!(
        token.starts_with("vha_") && !token.contains('\n'),
        "{token}"
    );
    let out = std::process::Command::new(agent_binary())
        .args(["--once"])
        .output()
        .expect("vigie-agent --once runs (built with the workspace)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    report["host"] = "web-1".into();
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                "op",
                "--role",
                "operator",
                "--password-stdin",
            ],
            Some("a-long-enough-password\n"),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                "someone",
                "--role",
                "user",
                "--password-stdin",
            ],
            Some("a-long-enough-password\n"),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let hub = env.serve().await;
    let answer = hub
        .post_json("/api/v1/agent/report", Some(&token), &report.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut op = Browser::new(&hub);
    assert_eq!(op.login("op", "a-long-enough-password").await.status, 303);
    let list = op.get("/hosts").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(">web-1<"), "{}", list.body);
    let page = op.get("/hosts/web-1?range=1h").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg class=\"chart\""),
        "charts drawn on the server"
    );
    assert!(page.body.contains("data-test=\"host-status\""));
    assert!(
        page.body.contains("data-test=\"limits-origin\""),
        "the limits that apply are shown"
    );
    assert_eq!(op.get("/hosts/nobody").await.status, 404);
    // The manager administers equipment: revoking the agent's token refuses its next report.
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                "chief",
                "--role",
                "manager",
                "--password-stdin",
            ],
            Some("a-long-enough-password\n"),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        !page.body.contains("data-test=\"revoke\""),
        "not offered to an operator"
    );
    assert_eq!(op.post("/hosts/web-1/revoke", &[]).await.status, 403);
    let mut chief = Browser::new(&hub);
    assert_eq!(
        chief.login("chief", "a-long-enough-password").await.status,
        303
    );
    let page = chief.get("/hosts/web-1").await;
    assert!(
        page.body.contains("data-test=\"revoke\""),
        "offered to a manager"
    );
    assert_eq!(chief.post("/hosts/web-1/revoke", &[]).await.status, 303);
    report["id"] = "web-1-after-revoke".into();
    let refused = hub
        .post_json("/api/v1/agent/report", Some(&token), &report.to_string())
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let mut user = Browser::new(&hub);
    assert_eq!(
        user.login("someone", "a-long-enough-password").await.status,
        303
    );
    assert_eq!(user.get("/hosts").await.status, 403);
    hub.stop().await;
}
