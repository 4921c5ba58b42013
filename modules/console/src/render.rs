//! Rendering: one Tera instance over the embedded templates, one layout, and the context every
//! page gets (language strings, the viewer, the navigation, the CSRF token, the flash message).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use tera::{Context, Tera};

use crate::i18n::{Lang, Locales};
use crate::viewer::Viewer;

/// Templates and strings: built once from what the binary embeds, shared by every worker and by
/// the error pages (which have no access to application data).
pub struct Renderer {
    tera: Tera,
    pub locales: Locales,
    /// Changes with the assets, so browsers can cache them for long.
    pub asset_version: String,
}

static RENDERER: OnceLock<Result<Renderer, String>> = OnceLock::new();
static DEFAULT_LANG: AtomicU8 = AtomicU8::new(1);

impl Renderer {
    fn build() -> Result<Renderer, String> {
        let mut tera = Tera::default();
        tera.add_raw_templates(crate::embedded::TEMPLATES.iter().copied())
            .map_err(|e| format!("templates: {e:?}"))?;
        tera.autoescape_on(vec![".html"]);
        let locales = Locales::load().map_err(|e| e.to_string())?;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, bytes) in crate::embedded::ASSETS {
            for b in *bytes {
                hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Ok(Renderer {
            tera,
            locales,
            asset_version: format!("{:x}", hash & 0xffff_ffff),
        })
    }

    /// The shared renderer; fails only if the embedded templates or locales are broken (a test
    /// renders every page, so a release never is).
    pub fn get() -> Result<&'static Renderer, String> {
        RENDERER
            .get_or_init(Renderer::build)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The language of pages shown before anyone is known and of errors without a viewer.
    pub fn set_default_lang(lang: Lang) {
        DEFAULT_LANG.store(if lang == Lang::En { 0 } else { 1 }, Ordering::Relaxed);
    }

    pub fn default_lang() -> Lang {
        if DEFAULT_LANG.load(Ordering::Relaxed) == 0 {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    pub fn template_names(&self) -> Vec<&str> {
        self.tera.get_template_names().collect()
    }

    /// Renders a page with the common context.
    pub fn render(
        &self,
        name: &str,
        lang: Lang,
        viewer: Option<&Viewer>,
        mut context: Context,
    ) -> Result<String, tera::Error> {
        context.insert("lang", lang.code());
        context.insert("t", self.locales.tree(lang));
        context.insert("asset_version", &self.asset_version);
        if let Some(v) = viewer {
            context.insert("viewer", &ViewerView::of(v));
            context.insert("nav", &v.nav);
            context.insert("csrf", &v.user.csrf);
            context.insert("tz", v.tz.name());
            context.insert("current_path", &v.path);
            if let Some(flash) = &v.flash {
                context.insert("flash", flash);
            }
        } else {
            context.insert("tz", "UTC");
        }
        self.tera.render(name, &context)
    }

    /// A rendered page as an answer.
    pub fn page(
        &self,
        status: StatusCode,
        name: &str,
        lang: Lang,
        viewer: Option<&Viewer>,
        context: Context,
    ) -> HttpResponse {
        match self.render(name, lang, viewer, context) {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(template = name, error = ?e, "A page failed to render.");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body(self.locales.text(lang, "error.internal"))
            }
        }
    }
}

/// What templates know of the viewer.
#[derive(Serialize)]
struct ViewerView<'a> {
    login: &'a str,
    name: String,
    role: &'a str,
    totp_enabled: bool,
}

impl<'a> ViewerView<'a> {
    fn of(v: &'a Viewer) -> ViewerView<'a> {
        ViewerView {
            login: &v.user.login,
            name: v.user.name(),
            role: &v.user.role,
            totp_enabled: v.user.totp_enabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_bare_pages_render_in_both_languages() -> Result<(), String> {
        let renderer = Renderer::get()?;
        let names = renderer.template_names();
        for expected in [
            "console/layout.html",
            "console/login.html",
            "console/admin/users.html",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        for lang in Lang::ALL {
            let mut context = Context::new();
            context.insert("next", "/");
            context.insert("login", "<script>x</script>");
            context.insert("csrf", "token");
            context.insert("notice", "expired");
            let html = renderer
                .render("console/login.html", lang, None, context)
                .map_err(|e| format!("{e:?}"))?;
            assert!(html.contains(&renderer.locales.text(lang, "auth.login_name")));
            assert!(
                html.contains("&lt;script&gt;x&lt;&#x2F;script&gt;"),
                "escaped: {html}"
            );
            assert!(!html.contains("<script>x"));
            let mut context = Context::new();
            context.insert("status", &404);
            context.insert("message", "gone");
            renderer
                .render("console/error.html", lang, None, context)
                .map_err(|e| format!("{e:?}"))?;
        }
        Ok(())
    }
}
