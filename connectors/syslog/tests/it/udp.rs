//! UDP datagrams.

use tokio::net::UdpSocket;
use vigie_syslog::{Protocol, SyslogConfig, Transport};

use crate::{config, start, take};

#[tokio::test]
async fn datagrams_are_received_parsed_and_counted() {
    let (server, mut rx) = start(&SyslogConfig {
        max_message_bytes: 480,
        ..config()
    })
    .await;
    let to = server.udp_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let long = format!("<11>Oct 11 22:14:15 h app: {}", "x".repeat(1000));
    for line in [
        &b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n"[..],
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event",
        b"\xff\xfe not syslog at all",
        b"\n",
        long.as_bytes(),
    ] {
        client.send_to(line, to).await.unwrap();
    }
    let got = take(&mut rx, 4).await;
    let sender = client.local_addr().unwrap();
    assert!(
        got.iter()
            .all(|m| m.sender == sender && m.transport == Transport::Udp)
    );

    assert_eq!(got[0].host, "mymachine");
    assert_eq!(got[0].severity, Some(2));
    assert_eq!(got[0].protocol, Protocol::Rfc3164);

    assert_eq!(got[1].protocol, Protocol::Rfc5424);
    assert_eq!(got[1].msg_id.as_deref(), Some("ID47"));
    assert_eq!(got[1].structured_data["exampleSDID@32473"]["iut"], "3");

    assert_eq!(got[2].protocol, Protocol::Unparsed);
    assert_eq!(got[2].host, "127.0.0.1");
    assert_eq!(got[2].message, "\u{FFFD}\u{FFFD} not syslog at all");

    // The blank datagram is skipped; the long one is cut and flagged.
    assert!(got[3].truncated);
    assert_eq!(got[3].raw.len(), 480);
    assert_eq!(got[3].app_name.as_deref(), Some("app"));

    let stats = server.stats();
    assert_eq!(stats.received(Transport::Udp), 4);
    assert_eq!(stats.unparsed(), 1);
    assert_eq!(stats.truncated(Transport::Udp), 1);
    server.shutdown().await;
}
