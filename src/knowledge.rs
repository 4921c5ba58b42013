//! Wiring between incidents and the knowledge base, which do not know each other: the "new
//! article" form prefilled from a closed incident, and the articles suggested to whoever opens
//! an incident.

use std::sync::Arc;

use vigie_core::store::Store;
use vigie_incidents::model::State;
use vigie_incidents::{SuggestFn, Suggestion};
use vigie_kb::{Draft, DraftSource};

/// Articles suggested on an incident's form and page.
const SUGGESTIONS: i64 = 5;

/// `/kb/new?incident=ID`: an article drafted from a resolved, closed or archived incident — its
/// title, its description as the symptoms, its resolution lines as the resolution.
pub(crate) fn draft_source() -> DraftSource {
    DraftSource::new(|store: Store, id: i64| {
        Box::pin(async move {
            let full = match vigie_incidents::load(&store, id).await {
                Ok(Some(full)) => full,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(incident = id, error = %e, "Cannot read the incident for an article.");
                    return None;
                }
            };
            let i = &full.incident;
            let state = State::parse(&i.state)?;
            if !matches!(state, State::Resolved | State::Closed | State::Archived) {
                return None;
            }
            let resolution = full
                .resolutions
                .iter()
                .map(|r| r.text.trim())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
            Some(Draft {
                title: i.title.clone(),
                symptoms: i.description.clone(),
                cause: i.comments.clone(),
                resolution,
                domain: Some(i.domain.clone()),
                tags: Some(i.category.trim())
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
                incident_id: Some(i.id),
                incident_reference: Some(i.reference.clone()),
            })
        })
    })
}

/// The articles closest to an incident's text.
pub(crate) fn suggest_fn() -> SuggestFn {
    Arc::new(|store: Store, text: String| {
        Box::pin(async move {
            match vigie_kb::suggest(&store, &text, None, SUGGESTIONS).await {
                Ok(hits) => hits
                    .into_iter()
                    .map(|h| Suggestion {
                        url: format!("/kb/{}", h.id),
                        title: h.title,
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "No article suggestions.");
                    Vec::new()
                }
            }
        })
    })
}
