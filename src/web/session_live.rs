//! `/_gatehouse/session/live`: a WebSocket over which an open tab of the app follows its session, so the tab
//! can leave the app for the sign-in page the moment the session ends, and offer "Stay signed in" shortly
//! before it would idle out. The page script that uses it is `static/session.js`, which the proxy adds to the
//! app's pages (`proxy::page_script`).
//!
//! A WebSocket rather than server-sent events: browsers allow six HTTP/1.1 connections per host, and an event
//! stream per open tab would use them up; WebSockets do not count against that limit.
//!
//! Messages from Gatehouse are JSON: `{"state":"signed_in"|"ending","ends_in":seconds,"extendable":bool,
//! "primary":colour|null,"on_primary":colour|null}` whenever that changes, and `{"state":"ended","reason":
//! "idle"|"expired"|"ended"|"none"}` before it closes. The tab sends the text `stay` to restart
//! the idle timer. Following a session is not use of it: the idle timer runs on while a tab only watches.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use time::OffsetDateTime;

use super::error::ErrorReply;
use crate::app::SharedState;
use crate::auth::cookies::read_single_cookie;
use crate::auth::csrf::check_origin;
use crate::config::brand::BrandConfig;
use crate::domain::Session;

/// "Stay signed in" appears this long before an idle timeout, or a quarter of the idle timeout when that is
/// shorter.
const WARNING: time::Duration = time::Duration::minutes(2);

/// The longest message a tab sends (`stay`).
const MAX_MESSAGE: usize = 64;

/// "Stay signed in" is one store write: it is honoured only while the tab is told its session is ending, at
/// most this often, and a tab that sends more than [`MAX_MESSAGES_PER_MINUTE`] messages is disconnected.
const STAY_EVERY: Duration = Duration::from_secs(5);
const MAX_MESSAGES_PER_MINUTE: u32 = 30;

pub async fn live(State(state): State<SharedState>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    // Another site's page may open WebSockets here too (browsers do not stop them); it must not learn
    // about, or extend, this browser's session.
    if check_origin(&headers, &state.config.server.public_url).is_err() {
        return ErrorReply::csrf().into_response();
    }
    let cookie = read_single_cookie(&headers, state.cookies.session).map(str::to_owned);
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| follow(state, cookie, socket))
        .into_response()
}

/// What the tab was last told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    ending: bool,
    ends_at: OffsetDateTime,
    extendable: bool,
}

async fn follow(state: SharedState, cookie: Option<String>, mut socket: WebSocket) {
    let watched = match &cookie {
        Some(cookie) => state.sessions.peek(cookie).await,
        None => Ok(None),
    };
    let (cookie, mut current) = match (cookie, watched) {
        (Some(cookie), Ok(Some(current))) => (cookie, current),
        (_, Err(err)) => {
            // The store cannot say: the tab keeps its page and tries again later (the app's own WebSocket
            // fails closed meanwhile), rather than being sent away over a hiccup.
            tracing::warn!(error = %err, "an open tab's session cannot be checked");
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        // No session: the tab should sign in (again).
        _ => {
            end(&mut socket, "none").await;
            return;
        }
    };
    let live = state.sessions.revocations().register(&current.session.id);
    let mut told: Option<Told> = None;
    let mut last_stay: Option<tokio::time::Instant> = None;
    let mut messages = (tokio::time::Instant::now(), 0u32);
    loop {
        let now = state.clock.now();
        let ends_at = current.session.ends_at();
        if ends_at <= now {
            break;
        }
        let warning = warning_window(&current.session);
        let ending = ends_at - now <= warning;
        let now_told = Told { ending, ends_at, extendable: current.session.can_be_extended() };
        if told != Some(now_told) {
            if socket.send(Message::Text(status(now_told, now, &state.config.brand).into())).await.is_err() {
                return;
            }
            told = Some(now_told);
        }
        // Wake when the warning is due or the session would end, and at every re-check in between (for
        // what no event announces: the clock moved, the store changed).
        let next = if ending { ends_at } else { ends_at - warning };
        let wait = to_std(next - now).min(state.session_recheck);
        let checked = tokio::select! {
            _ = tokio::time::sleep(wait) => state.sessions.peek(&cookie).await,
            _ = live.cancelled.cancelled() => Ok(None),
            _ = state.shutdown.cancelled() => return,
            message = socket.recv() => {
                let at = tokio::time::Instant::now();
                if at.duration_since(messages.0) >= Duration::from_secs(60) {
                    messages = (at, 0);
                }
                messages.1 += 1;
                if messages.1 > MAX_MESSAGES_PER_MINUTE {
                    tracing::info!("closing a session channel that sends too many messages");
                    return;
                }
                match message {
                    Some(Ok(Message::Text(text))) if text.as_str() == "stay" => {
                        let offered = told.is_some_and(|told| told.ending && told.extendable);
                        if !offered || last_stay.is_some_and(|last| at.duration_since(last) < STAY_EVERY) {
                            continue;
                        }
                        last_stay = Some(at);
                        state.sessions.extend(&cookie).await
                    }
                    // Pings are answered by the socket itself; anything else is ignored.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                }
            }
        };
        match checked {
            Ok(Some(fresh)) => current = fresh,
            Ok(None) => break,
            // Not an ending: the app's own WebSocket fails closed on its own re-check, and the tab is told
            // once the store answers again (or the session's known end passes).
            Err(err) => tracing::warn!(error = %err, "an open tab's session cannot be checked"),
        }
    }
    // Ended or expired: close the session's other live connections (the app's own WebSocket) now rather than
    // at their next re-check, and send the tab to the sign-in page.
    drop(live);
    state.sessions.revocations().revoke([&current.session.id]);
    // Why, as far as this channel can tell, for the sign-in page's words: idle, past its absolute end, or
    // ended by someone (signed out elsewhere, disabled, password changed).
    let session = &current.session;
    let reason = match session.ends_at() <= state.clock.now() {
        true if session.can_be_extended() => "idle",
        true => "expired",
        false => "ended",
    };
    end(&mut socket, reason).await;
}

fn warning_window(session: &Session) -> time::Duration {
    WARNING.min(session.idle_timeout / 4)
}

/// A status message; with `[theme] primary_color`, its colours too, so "Stay signed in" wears the app's.
fn status(told: Told, now: OffsetDateTime, brand: &BrandConfig) -> String {
    serde_json::json!({
        "state": if told.ending { "ending" } else { "signed_in" },
        "ends_in": (told.ends_at - now).whole_seconds().max(0),
        "extendable": told.extendable,
        "primary": brand.primary_color.map(|colour| colour.hex()),
        "on_primary": brand.primary_color.map(|colour| colour.text_on()),
    })
    .to_string()
}

async fn end(socket: &mut WebSocket, reason: &str) {
    let message = serde_json::json!({ "state": "ended", "reason": reason }).to_string();
    let _ = socket.send(Message::Text(message.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

fn to_std(duration: time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or(Duration::ZERO)
}
