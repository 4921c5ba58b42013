//! The incidents' mails, in the recipient's language (locale keys `incidents.mail_*`).

use vigie_auth::contacts::Contact;
use vigie_console::{Lang, Renderer};

use crate::model::Incident;
use crate::workflow::Env;

/// The locale key stem of a mail kind.
fn stem(kind: &str) -> &'static str {
    match kind {
        "incident.opened" => "opened",
        "incident.transferred" => "transferred",
        "incident.resolved" => "resolved",
        _ => "closed",
    }
}

/// Subject and text of the mail of `kind` about `incident` for `to`; `note` is the transfer's
/// people or the resolution's text.
pub(crate) fn compose(
    env: &Env<'_>,
    incident: &Incident,
    kind: &str,
    to: &Contact,
    by: &str,
    note: Option<&str>,
) -> (String, String) {
    let link = format!(
        "{}/incidents/{}",
        env.base_url.trim_end_matches('/'),
        incident.id
    );
    let lang = Lang::negotiate(to.lang.as_deref(), None, Renderer::default_lang());
    let domain = env.domains.get(&incident.domain).map_or_else(
        || incident.domain.clone(),
        |d| match lang {
            Lang::Fr => d.label_fr.clone(),
            Lang::En => d.label_en.clone(),
        },
    );
    let word = |key: String, raw: &str| match Renderer::get() {
        Ok(r) if r.locales.has(lang, &key) => r.locales.text(lang, &key),
        _ => raw.to_owned(),
    };
    let state = word(
        format!("incidents.states.{}", incident.state),
        &incident.state,
    );
    let criticality = word(
        format!("incidents.criticalities.{}", incident.criticality),
        &incident.criticality,
    );
    let fill = |template: String| {
        template
            .replace("{reference}", &incident.reference)
            .replace("{title}", &incident.title)
            .replace("{domain}", &domain)
            .replace("{criticality}", &criticality)
            .replace("{state}", &state)
            .replace("{by}", by)
            .replace("{name}", &to.name)
            .replace("{note}", note.unwrap_or_default())
            .replace("{description}", &incident.description)
            .replace("{link}", &link)
    };
    let stem = stem(kind);
    match Renderer::get() {
        Ok(r) => (
            fill(
                r.locales
                    .text(lang, &format!("incidents.mail_{stem}_subject")),
            ),
            fill(r.locales.text(lang, &format!("incidents.mail_{stem}_body"))),
        ),
        Err(_) => (
            format!("Incident {} {stem}: {}", incident.reference, incident.title),
            format!("{}\n{}\n{link}", incident.title, note.unwrap_or_default()),
        ),
    }
}
