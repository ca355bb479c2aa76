//! Live tailing: each commit announces the ids it made visible; a tail
//! runs its query over exactly those documents and sends the matches, in
//! order of arrival, as Server-Sent Events. Streams end when the server
//! stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event;
use futures_util::Stream;
use tantivy::query::Query;
use tokio::sync::broadcast::error::RecvError;

use super::LogStore;
use super::query::LogLine;

/// The events of a tail: one `data:` line per new matching line (the
/// search API's line object); a comment when commits were missed because
/// the client read too slowly.
pub fn events(
    store: Arc<LogStore>,
    query: Arc<dyn Query>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let rx = store.subscribe();
    let closing = store.closing();
    futures_util::stream::unfold(
        (rx, closing, VecDeque::<Event>::new(), store, query),
        |(mut rx, mut closing, mut pending, store, query)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    return Some((Ok(e), (rx, closing, pending, store, query)));
                }
                let next = tokio::select! {
                    next = rx.recv() => next,
                    // The server is stopping: end the stream so that the
                    // graceful shutdown does not wait for the client.
                    _ = closing.wait_for(|c| *c) => return None,
                };
                match next {
                    Ok(commit) => {
                        let (s, q) = (store.clone(), query.clone());
                        let lines = tokio::task::spawn_blocking(move || {
                            s.committed_lines(
                                q.as_ref(),
                                commit.partition_start_ns,
                                commit.first_id,
                                commit.last_id,
                            )
                        })
                        .await;
                        match lines {
                            Ok(Ok(lines)) => pending.extend(lines.iter().map(line_event)),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "tail: reading committed lines");
                                pending.push_back(Event::default().comment(format!("error: {e}")));
                            }
                            Err(e) => tracing::error!(error = %e, "tail: reader panicked"),
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        pending.push_back(
                            Event::default().comment(format!("lagged: {n} commits skipped")),
                        );
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}

fn line_event(line: &LogLine) -> Event {
    Event::default().data(serde_json::to_string(line).expect("serialisable"))
}
