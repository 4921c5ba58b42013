//! The console's static files (CSS, JavaScript, icons), served from the binary: no external
//! network, no build step.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::embedded::ASSETS;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{file:.*}", web::get().to(asset));
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some((_, bytes)) = ASSETS.iter().find(|(name, _)| *name == file.as_str()) else {
        return crate::not_found(req).await;
    };
    // Links carry `?v=<hash of the assets>`: a new build changes it, so browsers may keep a
    // file for long.
    let cache = if req.query_string().starts_with("v=") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type(&file)))
        .insert_header((CACHE_CONTROL, cache))
        .body(*bytes)
}
