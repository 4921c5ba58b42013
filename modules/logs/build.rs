//! Rebuilds the crate when its migrations change: `sqlx::migrate!` embeds the files at compile
//! time, and cargo does not know to look at them otherwise.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite-syslog");
}
