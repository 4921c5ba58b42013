//! Splitting a TCP (or TLS) byte stream into syslog messages, RFC 6587.
//!
//! Both framings are accepted, decided frame by frame, so a sender may even mix them:
//! - **octet counting** (`LEN SP MSG`, RFC 5425 and RFC 6587 §3.4.1): a frame that starts with
//!   digits followed by a space;
//! - **non-transparent framing** (RFC 6587 §3.4.2): anything else, up to a line feed or a NUL;
//!   a CR before the LF is dropped.
//!
//! Empty frames (stray LF, CR or NUL between messages) are skipped. A message longer than the
//! maximum is cut to it and flagged; the rest of it is skipped (octet counting says where it
//! ends; a line ends at its delimiter), so the stream stays in step. Only an octet count that
//! cannot be a length (0, or more than ten digits) is an error: nothing then says where the next
//! message starts, and the connection has to be closed.
//!
//! [`Framer`] is a pure decoder over a [`BytesMut`], fed by the reader and unit-tested alone.

use bytes::{Buf as _, Bytes, BytesMut};

/// One message cut out of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub data: Bytes,
    /// The message was longer than the maximum and was cut to it.
    pub truncated: bool,
}

/// Why the stream cannot be framed any further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid octet count `{0}`")]
    BadCount(String),
    /// The stream ended inside an octet-counted message.
    #[error("the stream ended {missing} bytes before the end of an octet-counted message")]
    Incomplete { missing: usize },
}

/// Digits an octet count may have (a count up to 9 999 999 999 bytes: longer messages are cut
/// anyway, the count only says how much to skip).
const MAX_COUNT_DIGITS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames.
    Start,
    /// Inside an octet-counted message: `len` bytes of it are kept, `skip` more after them are
    /// discarded.
    Counted { len: usize, skip: usize },
    /// Inside a line; `scanned` bytes already searched for a delimiter.
    Line { scanned: usize },
    /// Discarding `n` more bytes (the tail of an over-long octet-counted message).
    Skip(usize),
    /// Discarding up to the next delimiter (the tail of an over-long line).
    SkipLine,
}

/// The decoder; one per connection.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    state: State,
}

fn is_delimiter(b: u8) -> bool {
    b == b'\n' || b == 0
}

impl Framer {
    /// A framer keeping messages of at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Framer {
        Framer {
            max: max_message_bytes.max(1),
            state: State::Start,
        }
    }

    /// Whether the framer is between messages (nothing of a message is pending).
    pub fn is_idle(&self) -> bool {
        self.state == State::Start
    }

    /// The next complete message in `buf`, consuming it; `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Skip(n) => {
                    let k = n.min(buf.len());
                    buf.advance(k);
                    if k < n {
                        self.state = State::Skip(n - k);
                        return Ok(None);
                    }
                    self.state = State::Start;
                }
                State::SkipLine => match buf.iter().position(|b| is_delimiter(*b)) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.state = State::Start;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                },
                State::Counted { len, skip } => {
                    if buf.len() < len {
                        return Ok(None);
                    }
                    let data = buf.split_to(len).freeze();
                    self.state = if skip > 0 {
                        State::Skip(skip)
                    } else {
                        State::Start
                    };
                    return Ok(Some(Frame {
                        data,
                        truncated: skip > 0,
                    }));
                }
                State::Line { scanned } => {
                    match buf[scanned..].iter().position(|b| is_delimiter(*b)) {
                        Some(i) => {
                            let end = scanned + i;
                            let mut line = buf.split_to(end + 1);
                            line.truncate(end);
                            if line.last() == Some(&b'\r') {
                                line.truncate(end - 1);
                            }
                            self.state = State::Start;
                            let truncated = line.len() > self.max;
                            line.truncate(self.max);
                            return Ok(Some(Frame {
                                data: line.freeze(),
                                truncated,
                            }));
                        }
                        None if buf.len() > self.max => {
                            let data = buf.split_to(self.max).freeze();
                            self.state = State::SkipLine;
                            return Ok(Some(Frame {
                                data,
                                truncated: true,
                            }));
                        }
                        None => {
                            self.state = State::Line { scanned: buf.len() };
                            return Ok(None);
                        }
                    }
                }
                State::Start => {
                    let blank = buf
                        .iter()
                        .take_while(|b| matches!(**b, b'\n' | b'\r' | 0))
                        .count();
                    buf.advance(blank);
                    let Some(first) = buf.first() else {
                        return Ok(None);
                    };
                    if !first.is_ascii_digit() {
                        self.state = State::Line { scanned: 0 };
                        continue;
                    }
                    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
                    match buf.get(digits) {
                        // A run of digits longer than a message is not waited on: a line, cut
                        // like any other (decided on the count alone, so however it is read).
                        _ if digits > self.max.max(MAX_COUNT_DIGITS) => {
                            self.state = State::Line { scanned: digits };
                        }
                        // Still reading the count, or a line that starts with a number: only the
                        // byte after the digits tells, so wait for it even past ten digits (a
                        // read ending there must not decide otherwise than one going on).
                        None => return Ok(None),
                        Some(b' ') => {
                            let text = String::from_utf8_lossy(&buf[..digits]).into_owned();
                            let len: usize = match text.parse() {
                                Ok(n) if n > 0 && digits <= MAX_COUNT_DIGITS => n,
                                _ => return Err(FrameError::BadCount(text)),
                            };
                            buf.advance(digits + 1);
                            let kept = len.min(self.max);
                            buf.reserve(kept.saturating_sub(buf.len()));
                            self.state = State::Counted {
                                len: kept,
                                skip: len - kept,
                            };
                        }
                        // Digits then something else: an ordinary line.
                        Some(_) => self.state = State::Line { scanned: digits },
                    }
                }
            }
        }
    }

    /// At the end of the stream: the last message, even without its delimiter. An octet-counted
    /// message cut short is an error (it is incomplete, not a message).
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match self.state {
            State::Counted { len, .. } => {
                let missing = len - buf.len();
                buf.clear();
                self.state = State::Start;
                Err(FrameError::Incomplete { missing })
            }
            State::Start | State::Line { .. } if !buf.is_empty() => {
                let mut line = buf.split();
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                self.state = State::Start;
                let truncated = line.len() > self.max;
                line.truncate(self.max);
                Ok(Some(Frame {
                    data: line.freeze(),
                    truncated,
                }))
            }
            _ => {
                buf.clear();
                self.state = State::Start;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Every frame of `input` fed in one go, then the end of the stream.
    fn frames(max: usize, input: &[u8]) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = framer.decode(&mut buf).unwrap() {
            out.push((String::from_utf8_lossy(&f.data).into_owned(), f.truncated));
        }
        if let Some(f) = framer.decode_eof(&mut buf).unwrap() {
            out.push((String::from_utf8_lossy(&f.data).into_owned(), f.truncated));
        }
        out
    }

    fn texts(frames: &[(String, bool)]) -> Vec<&str> {
        frames.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn both_framings_mixed() {
        let input =
            b"<13>a line\n11 <13>counted<14>crlf line\r\n\n\x00<15>nul ended\x0011 <13>1 2 3 \n";
        let got = frames(1024, input);
        assert_eq!(
            texts(&got),
            [
                "<13>a line",
                "<13>counted",
                "<14>crlf line",
                "<15>nul ended",
                "<13>1 2 3 \n"
            ]
        );
        assert!(got.iter().all(|(_, t)| !t));
    }

    #[test]
    fn octet_counted_messages_may_hold_line_feeds() {
        let got = frames(1024, b"16 <13>first\nsecond9 <13>third");
        assert_eq!(texts(&got), ["<13>first\nsecond", "<13>third"]);
    }

    #[test]
    fn a_line_starting_with_digits_is_a_line() {
        let got = frames(1024, b"2024-01-01 something\n123abc\n");
        assert_eq!(texts(&got), ["2024-01-01 something", "123abc"]);
    }

    #[test]
    fn split_across_reads_at_every_position() {
        let input: &[u8] = b"9 <13>hello<14>world\r\n12 <15>counted!\n<16>last\n";
        for chunk in 1..=input.len() {
            let mut framer = Framer::new(1024);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = framer.decode(&mut buf).unwrap() {
                    out.push(String::from_utf8_lossy(&f.data).into_owned());
                }
            }
            assert_eq!(
                out,
                ["<13>hello", "<14>world", "<15>counted!", "<16>last"],
                "chunk size {chunk}"
            );
            assert!(framer.is_idle());
        }
    }

    #[test]
    fn over_long_messages_are_cut_and_the_stream_stays_in_step() {
        let mut input = b"20 <13>0123456789abcdef".to_vec();
        input.extend_from_slice(b"<13>an over-long line here\n<14>ok\n");
        let got = frames(8, &input);
        assert_eq!(
            got,
            [
                ("<13>0123".to_owned(), true),
                ("<13>an o".to_owned(), true),
                ("<14>ok".to_owned(), false),
            ]
        );
    }

    #[test]
    fn over_long_tail_split_across_reads_is_skipped() {
        let mut framer = Framer::new(4);
        let mut buf = BytesMut::from(&b"10 abcd"[..]);
        assert_eq!(
            framer.decode(&mut buf).unwrap().map(|f| f.truncated),
            Some(true)
        );
        assert_eq!(framer.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ef");
        assert_eq!(framer.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ghij3 xyz");
        let f = framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!((&f.data[..], f.truncated), (&b"xyz"[..], false));
    }

    #[test]
    fn bad_octet_counts_are_errors() {
        for input in [&b"0 <13>x"[..], b"12345678901 <13>x", b"123456789012 "] {
            let mut framer = Framer::new(1024);
            let mut buf = BytesMut::from(input);
            assert!(
                matches!(framer.decode(&mut buf), Err(FrameError::BadCount(_))),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// Found by the cargo-fuzz target (fuzz/, 2026-11-21): a line starting with more than ten
    /// digits was an invalid octet count when a read ended right after the digits, a line
    /// otherwise, so TCP segmentation could close a connection.
    #[test]
    fn a_line_starting_with_many_digits_is_a_line_however_it_is_read() {
        let input: &[u8] =
            b"16 d9 <1\xc94,44444444444444444444444444444444444444444>third\n<13>next\n";
        let whole = texts(&frames(480, input))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(
            whole,
            [
                "d9 <1\u{fffd}4,44444444",
                "444444444444444444444444444444444>third",
                "<13>next"
            ]
        );
        for cut in 0..=input.len() {
            let mut framer = Framer::new(480);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in [&input[..cut], &input[cut..]] {
                buf.extend_from_slice(piece);
                while let Some(f) = framer.decode(&mut buf).unwrap() {
                    out.push(String::from_utf8_lossy(&f.data).into_owned());
                }
            }
            assert_eq!(out, whole, "cut at {cut}");
        }
        // Digits alone at the end of the stream are a line too, and a run of digits longer than
        // a message is an over-long line, not an error.
        assert_eq!(texts(&frames(1024, b"123456789012")), ["123456789012"]);
        let long = [b'7'; 600];
        let got = frames(480, &[&long[..], b" <13>x\n<14>ok\n"].concat());
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.len(), got[0].1), (480, true));
        assert_eq!(got[1].0, "<14>ok");
    }

    #[test]
    fn end_of_stream() {
        // A last line without its delimiter is a message.
        assert_eq!(
            texts(&frames(1024, b"<13>a\n<13>no newline")),
            ["<13>a", "<13>no newline"]
        );
        // A number alone at the end too.
        assert_eq!(texts(&frames(1024, b"123")), ["123"]);
        // An octet-counted message cut short is not.
        let mut framer = Framer::new(1024);
        let mut buf = BytesMut::from(&b"10 <13>ab"[..]);
        assert_eq!(framer.decode(&mut buf).unwrap(), None);
        assert_eq!(
            framer.decode_eof(&mut buf),
            Err(FrameError::Incomplete { missing: 4 })
        );
        // Only delimiters: nothing.
        assert!(frames(1024, b"\n\r\n\x00\n").is_empty());
    }
}
