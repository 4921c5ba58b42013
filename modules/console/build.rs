//! Embeds the console's templates, static assets and locale files in the binary, so the hub runs
//! from any directory and needs no network: every file under `templates/` and `locales/` becomes
//! an entry of `embedded.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let templates = root.join("templates");
    let locales = root.join("locales");
    println!("cargo:rerun-if-changed={}", templates.display());
    println!("cargo:rerun-if-changed={}", locales.display());
    let mut files = Vec::new();
    walk(&templates, &mut files);
    let mut code = String::from(
        "/// Templates: (name relative to templates/, text).\npub(crate) static TEMPLATES: &[(&str, &str)] = &[\n",
    );
    let mut assets = String::from(
        "/// Static assets: (path under templates/static/, bytes).\npub(crate) static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let Ok(rel) = file.strip_prefix(&templates) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let abs = file.canonicalize().unwrap_or_else(|_| file.clone());
        if let Some(asset) = rel.strip_prefix("static/") {
            let _ = writeln!(
                assets,
                "    ({asset:?}, include_bytes!({:?})),",
                abs.display().to_string()
            );
        } else if rel.ends_with(".html") || rel.ends_with(".txt") {
            let _ = writeln!(
                code,
                "    ({rel:?}, include_str!({:?})),",
                abs.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    assets.push_str("];\n");
    let mut loc = String::from(
        "/// Locale files: (language, TOML text).\npub(crate) static LOCALES: &[(&str, &str)] = &[\n",
    );
    let mut files = Vec::new();
    walk(&locales, &mut files);
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        if file.extension().is_some_and(|e| e == "toml")
            && let Some(stem) = file.file_stem()
        {
            let abs = file.canonicalize().unwrap_or_else(|_| file.clone());
            let _ = writeln!(
                loc,
                "    ({:?}, include_str!({:?})),",
                stem.to_string_lossy(),
                abs.display().to_string()
            );
        }
    }
    loc.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    let _ = fs::write(out, format!("{code}\n{assets}\n{loc}"));
}
