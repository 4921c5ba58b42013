//! Fuzzing of what the network controls: the framer and the parser get mutated real-world input
//! (bit flips, cuts, insertions of delimiters, digits and brackets, random bytes) for a time budget
//! (`VIGIE_FUZZ_SECONDS`, 3 s in the test suite; `scripts/fuzz-syslog` runs longer). Nothing may
//! panic, and what comes out must keep the receiver's promises.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Utc;
use vigie_syslog::frame::Framer;
use vigie_syslog::{Origin, ParseOptions, Transport, parse, to_record};

/// A small deterministic generator (xorshift64*): a failure prints its seed to replay it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CORPUS: &[&[u8]] = &[
    b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    b"<189>123: *Mar  1 00:00:09.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry",
    b"<86>1 2026-11-21T07:00:00+01:00 host app 1234 - - \xef\xbb\xbfhello",
    b"<13>Nov 21 07:00:00 host tag[42]: message with [brackets] and = signs",
    b"just text without a priority",
    b"<999>garbage",
    b"",
];

const SPICE: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\0",
    b" ",
    b"<",
    b">",
    b"[",
    b"]",
    b"\"",
    b"=",
    b"\\",
    b"99999999999 ",
    b"-",
    b"\xff\xfe",
    b"\xe2\x82",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out.truncate(i);
            }
            2 => {
                let i = rng.below(out.len() + 1);
                let s = SPICE[rng.below(SPICE.len())];
                out.splice(i..i, s.iter().copied());
            }
            3 => {
                let n = rng.below(64);
                let i = rng.below(out.len() + 1);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(i..i, bytes);
            }
            4 => {
                let other = CORPUS[rng.below(CORPUS.len())];
                out.extend_from_slice(other);
            }
            _ => {
                let n = rng.below(3000);
                out.extend(std::iter::repeat_n(b"a9[ "[rng.below(4)], n));
            }
        }
    }
    out
}

fn budget() -> Duration {
    let seconds = std::env::var("VIGIE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("VIGIE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1)
}

#[test]
fn the_parser_survives_mutated_input_and_keeps_its_promises() {
    let seed = seed();
    let mut rng = Rng(seed);
    let origin = Origin {
        sender: SocketAddr::from(([192, 0, 2, 1], 514)),
        transport: Transport::Udp,
        received_at: Utc::now(),
    };
    let options = ParseOptions::default();
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let base = CORPUS[rng.below(CORPUS.len())];
        let input = mutate(&mut rng, base);
        let msg = parse(&input, false, origin, &options);
        assert!(
            msg.raw.chars().all(|c| c == '\t' || !c.is_control()),
            "seed {seed}: control characters kept in {:?}",
            msg.raw
        );
        assert!(
            msg.severity.is_none_or(|s| s <= 7),
            "seed {seed}: severity {:?}",
            msg.severity
        );
        assert!(
            msg.facility.is_none_or(|f| f <= 23),
            "seed {seed}: facility {:?}",
            msg.facility
        );
        assert!(!msg.host.is_empty(), "seed {seed}: no host for {input:?}");
        let record = to_record(&msg, "syslog");
        assert!(
            !record.message.trim().is_empty(),
            "seed {seed}: empty message"
        );
        assert!(
            record.message.len() <= 16 * 1024,
            "seed {seed}: message too long"
        );
        assert!(
            record.resource.chars().count() <= 255,
            "seed {seed}: resource too long"
        );
        assert!(
            !record.resource.trim().is_empty(),
            "seed {seed}: empty resource"
        );
        runs += 1;
    }
    println!(
        "parser fuzz: {runs} inputs in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(runs > 100, "the budget allowed too few runs");
}

#[test]
fn the_framer_survives_mutated_streams_cut_anywhere() {
    let seed = seed();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut streams = 0u64;
    let max = 2048;
    while started.elapsed() < budget() {
        // A stream of frames in both framings, mutated, delivered in random pieces.
        let mut stream = Vec::new();
        for _ in 0..rng.below(8) + 1 {
            let base = CORPUS[rng.below(CORPUS.len())];
            let body = mutate(&mut rng, base);
            if rng.below(2) == 0 {
                stream.extend_from_slice(format!("{} ", body.len()).as_bytes());
                stream.extend_from_slice(&body);
            } else {
                stream.extend_from_slice(&body);
                stream.push(b'\n');
            }
        }
        let stream = mutate(&mut rng, &stream);
        let mut framer = Framer::new(max);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut failed = false;
        while fed < stream.len() && !failed {
            let piece = (rng.below(300) + 1).min(stream.len() - fed);
            buf.extend_from_slice(&stream[fed..fed + piece]);
            fed += piece;
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(frame)) => assert!(
                        frame.data.len() <= max,
                        "seed {seed}: frame over the maximum"
                    ),
                    Ok(None) => break,
                    // A bad count ends the connection: a clear error, not a panic.
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            // Memory stays bounded whatever the stream: what is buffered never grows past a frame.
            assert!(
                buf.len() <= max + 400,
                "seed {seed}: {} bytes buffered",
                buf.len()
            );
        }
        if !failed {
            while let Ok(Some(frame)) = framer.decode_eof(&mut buf) {
                assert!(frame.data.len() <= max);
            }
        }
        streams += 1;
    }
    println!(
        "framer fuzz: {streams} streams in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(streams > 100);
}
