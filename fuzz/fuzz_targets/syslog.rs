//! libFuzzer target over what the network controls, end to end: a TCP byte stream is framed as
//! the TCP/TLS listener does (RFC 6587, octet counting or newline decided per frame), delivered in
//! pieces as reads would deliver it; every frame is parsed, turned into a record and qualified
//! (normalisation, then the shipped `config/rules.toml`). The whole input is also taken as one UDP
//! datagram. Run: `scripts/fuzz-syslog`, or `cargo fuzz run --sanitizer none syslog`
//! (docs/syslog.md, "Fuzzing").
//!
//! Checked, besides "no panic": frames stay within the maximum and the framer never buffers more
//! than one frame; how the stream is cut into reads changes nothing (same frames, same error);
//! severity ≤ 7 and facility ≤ 23; the record is never refused by normalisation; the shipped
//! rules apply the reference mapping (5–7 dropped, 0–4 kept with a level in domain network).

#![no_main]

use std::net::SocketAddr;
use std::sync::LazyLock;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use vigie_alerts::normalize::{Limits, normalize};
use vigie_alerts::rules::{RuleSet, Verdict};
use vigie_core::domain::Domains;
use vigie_syslog::frame::{Frame, FrameError, Framer};
use vigie_syslog::{Origin, ParseOptions, Transport, parse, to_record};

/// Message limits the framer is run with: the smallest the configuration accepts (so truncation
/// is reached by small inputs) and a larger one.
const MAXIMA: [usize; 2] = [480, 2048];
/// The longest octet count the framer waits for (frame.rs `MAX_COUNT_DIGITS`).
const MAX_COUNT_DIGITS: usize = 10;

static DOMAINS: LazyLock<Domains> = LazyLock::new(Domains::default);
static RULES: LazyLock<RuleSet> = LazyLock::new(|| match RuleSet::shipped(&DOMAINS) {
    Ok(rules) => rules,
    Err(problems) => panic!("the shipped rules do not load: {problems:?}"),
});
static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);
/// A fixed time of receipt, so a crash replays the same (RFC 3164 years depend on it).
static RECEIVED_AT: LazyLock<DateTime<Utc>> = LazyLock::new(|| {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
});

/// How the stream ended for the framer.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Error(FrameError),
}

/// Reads as the listener gets them: sizes from a small generator seeded by the input itself, so
/// every input replays the same way and different inputs are cut differently.
struct Pieces(u64);

impl Pieces {
    fn new(data: &[u8]) -> Pieces {
        // FNV-1a of the input.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        Pieces(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly small reads (1..=64 bytes: boundaries fall inside counts and lines), some large.
    fn size(&mut self) -> usize {
        let r = self.next();
        if r % 4 == 0 {
            (r >> 8) as usize % 4096 + 1
        } else {
            (r >> 8) as usize % 64 + 1
        }
    }
}

/// Frames `stream` fed in pieces of `sizes` (`None`: all at once), then ends it, as
/// `listen.rs::read_frames` does.
fn frame(stream: &[u8], max: usize, mut sizes: Option<&mut Pieces>) -> (Vec<Frame>, End) {
    let mut framer = Framer::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    while fed < stream.len() {
        let piece = match sizes.as_deref_mut() {
            Some(p) => p.size().min(stream.len() - fed),
            None => stream.len(),
        };
        buf.extend_from_slice(&stream[fed..fed + piece]);
        fed += piece;
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.data.len() <= max, "frame of {} bytes", f.data.len());
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => return (frames, End::Error(e)),
            }
        }
        // Memory stays bounded: between reads at most one frame (or an octet count) is buffered.
        assert!(
            buf.len() <= max.max(MAX_COUNT_DIGITS),
            "{} bytes buffered with a maximum of {max}",
            buf.len()
        );
    }
    loop {
        match framer.decode_eof(&mut buf) {
            Ok(Some(f)) => {
                assert!(f.data.len() <= max, "last frame of {} bytes", f.data.len());
                frames.push(f);
            }
            Ok(None) => break,
            Err(e) => return (frames, End::Error(e)),
        }
    }
    assert!(buf.is_empty(), "{} bytes left after the end", buf.len());
    (frames, End::Eof)
}

/// Parses, builds the record and qualifies one message, checking each step.
fn qualify(bytes: &[u8], truncated: bool, transport: Transport) {
    let origin = Origin {
        sender: SocketAddr::from(([192, 0, 2, 1], 514)),
        transport,
        received_at: *RECEIVED_AT,
    };
    let msg = parse(bytes, truncated, origin, &ParseOptions::default());
    assert!(
        msg.severity.is_none_or(|s| s <= 7),
        "severity {:?}",
        msg.severity
    );
    assert!(
        msg.facility.is_none_or(|f| f <= 23),
        "facility {:?}",
        msg.facility
    );
    assert!(!msg.host.is_empty(), "no host");
    assert!(
        msg.raw.chars().all(|c| c == '\t' || !c.is_control()),
        "control characters kept in {:?}",
        msg.raw
    );

    let record = to_record(&msg, "syslog");
    let mut problems = Vec::new();
    let candidate = normalize(0, record, &DOMAINS, &LIMITS, &mut problems);
    assert!(problems.is_empty(), "record refused: {problems:?}");
    let Some(mut candidate) = candidate else {
        panic!("record refused without a problem");
    };

    let verdict = RULES.qualify(&mut candidate);
    match msg.severity {
        Some(5..=7) => assert!(
            matches!(verdict, Verdict::Drop { .. }),
            "severity {:?} kept",
            msg.severity
        ),
        Some(_) => {
            assert_eq!(verdict, Verdict::Keep, "severity {:?}", msg.severity);
            assert!(candidate.level.is_some(), "no level for {:?}", msg.severity);
            assert_eq!(candidate.domain.as_deref(), Some("network"));
        }
        None => assert_eq!(verdict, Verdict::Keep, "no severity, yet {verdict:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut pieces = Pieces::new(data);
    let max = MAXIMA[(pieces.next() % MAXIMA.len() as u64) as usize];

    let (whole, whole_end) = frame(data, max, None);
    let (cut, cut_end) = frame(data, max, Some(&mut pieces));
    // The same frames whatever the reads. (`truncated` may differ for a line of exactly the
    // maximum followed by CR LF when a read ends between them: the data is the same.)
    let texts = |frames: &[Frame]| frames.iter().map(|f| f.data.clone()).collect::<Vec<_>>();
    assert_eq!(
        texts(&whole),
        texts(&cut),
        "frames depend on how the stream is read"
    );
    assert_eq!(
        whole_end, cut_end,
        "the end depends on how the stream is read"
    );

    for f in &cut {
        qualify(&f.data, f.truncated, Transport::Tcp);
    }
    // The same bytes as one UDP datagram (cut to the maximum, as `listen.rs::datagram` does).
    let truncated = data.len() > max;
    qualify(&data[..data.len().min(max)], truncated, Transport::Udp);
});
