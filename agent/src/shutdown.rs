//! SIGTERM and SIGINT end the agent between two steps, never in the middle of a spool write or a
//! delivery: the in-flight report is delivered or spooled first.
//!
//! On Unix a self-pipe (signal-hook writes to a socket pair) doubles as the agent's sleep: waiting
//! for the next tick is a read with a timeout, so a signal wakes it at once and nothing polls.
//! Elsewhere the agent sleeps and only a kill stops it, which loses at most the report being
//! collected (it is re-collected at the next start).

use std::time::Duration;

pub struct Shutdown {
    #[cfg(unix)]
    rx: Option<std::os::unix::net::UnixStream>,
    triggered: std::cell::Cell<bool>,
}

impl Shutdown {
    /// Registers the signal handlers. Without them (an error here) the agent still runs, and a
    /// signal kills it the default way.
    pub fn install() -> Shutdown {
        #[cfg(unix)]
        {
            match install_pipe() {
                Ok(rx) => Shutdown {
                    rx: Some(rx),
                    triggered: false.into(),
                },
                Err(e) => {
                    crate::warn!(
                        "signal handlers not installed ({e}); SIGTERM kills the agent at once"
                    );
                    Shutdown {
                        rx: None,
                        triggered: false.into(),
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            Shutdown {
                triggered: false.into(),
            }
        }
    }

    /// Waits up to `timeout`; true when a stop was asked for (then and ever after).
    pub fn wait(&self, timeout: Duration) -> bool {
        if self.triggered.get() {
            return true;
        }
        #[cfg(unix)]
        if let Some(rx) = &self.rx {
            use std::io::{ErrorKind, Read};
            let mut buf = [0u8; 16];
            let got = if timeout.is_zero() {
                rx.set_nonblocking(true)
                    .and_then(|()| (&*rx).read(&mut buf))
            } else {
                rx.set_nonblocking(false)
                    .and_then(|()| rx.set_read_timeout(Some(timeout)))
                    .and_then(|()| (&*rx).read(&mut buf))
            };
            match got {
                Ok(n) if n > 0 => self.triggered.set(true),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The pipe broke: fall back to sleeping, so the loop keeps its pace.
                _ => std::thread::sleep(timeout),
            }
            return self.triggered.get();
        }
        std::thread::sleep(timeout);
        false
    }

    /// Non-blocking check, for long loops such as a spool replay.
    pub fn requested(&self) -> bool {
        self.wait(Duration::ZERO)
    }
}

#[cfg(unix)]
fn install_pipe() -> std::io::Result<std::os::unix::net::UnixStream> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
    signal_hook::low_level::pipe::register(SIGTERM, tx.try_clone()?)?;
    signal_hook::low_level::pipe::register(SIGINT, tx)?;
    Ok(rx)
}
