//! `GET|POST /_gatehouse/oidc/logout`: RP-initiated logout. With an `id_token_hint` we issued for the user
//! of this browser, the Gatehouse session ends at once (that is what `st.logout()` sends); without one, the
//! user confirms first, so a link on another site cannot sign anyone out. Afterwards the browser goes to the
//! client's registered `post_logout_redirect_uri`, or to the sign-in page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::{ProtocolParams, allow_form_targets};
use crate::app::SharedState;
use crate::oidc::logout::LogoutRequest;
use crate::web::error::ErrorReply;
use crate::web::extract::{client_info, csrf_for_page, current_session, html_page, verify_csrf, with_cookies};
use crate::web::logout::sign_out;
use crate::web::templates::render;

pub async fn end_session(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ProtocolParams { method, params }: ProtocolParams,
) -> Result<Response, ErrorReply> {
    // The confirmation form posts `confirm`; a relying party may also POST its logout request (no CSRF then).
    let confirmed = match &params {
        Ok(form) if method == Method::POST && form.get("confirm").is_some() => {
            verify_csrf(&state, &headers, form.get("csrf_token").unwrap_or(""))?;
            true
        }
        _ => false,
    };
    let params =
        params.map_err(|why| ErrorReply::bad_request(format!("This sign-out request is malformed: {why}.")))?;
    let request = state.oidc.logout_request(&params).await.map_err(ErrorReply::bad_request)?;
    let current = current_session(&state, &headers).await?;
    // Only a token issued from this very session signs out without asking (RP-Initiated Logout §2): an
    // old ID token of the same user, replayed by another site, gets the confirmation page.
    let hint_is_this_session = match (&request.hint, &current) {
        (Some(hint), Some(current)) => {
            hint.sub == current.user.id.0 && hint.sid.as_deref() == Some(current.session.id.0.as_str())
        }
        _ => false,
    };
    let Some(current) = current else {
        // Nobody to sign out here (already signed out, or the session ended): just go back.
        return Ok(finish(&request, None));
    };
    if !(confirmed || hint_is_this_session) {
        return Ok(confirmation_page(&state, &headers, &request, &current.user));
    }
    let revoked = state.store.revoke_session_grants(&current.session.id).await?;
    let via = request.client.as_ref().map_or_else(|| "end-session".to_owned(), |c| format!("client {}", c.client_id));
    let client = client_info(&state, peer, &headers);
    let removal = sign_out(&state, &current, client, Some(format!("{via}; {revoked} token(s) revoked"))).await?;
    Ok(finish(&request, Some(removal)))
}

fn finish(request: &LogoutRequest, removal: Option<HeaderValue>) -> Response {
    let to = request.redirect.clone().unwrap_or_else(|| "/_gatehouse/login?signed_out=1".to_owned());
    with_cookies(Redirect::to(&to).into_response(), removal)
}

fn confirmation_page(
    state: &SharedState,
    headers: &HeaderMap,
    request: &LogoutRequest,
    user: &crate::domain::User,
) -> Response {
    let csrf = csrf_for_page(state, headers);
    let html = render(
        "oidc_logout.html",
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token,
            name => user.name_for_display(),
            username => user.username.as_str(),
            client_name => request.client.as_ref().map(|c| c.name.clone()),
            client_id => request.client.as_ref().map(|c| c.client_id.clone()),
            post_logout_redirect_uri => request.post_logout_redirect_uri,
            state => request.state,
        },
    );
    let mut response = with_cookies(html_page(StatusCode::OK, html), csrf.set_cookie);
    let origins: Vec<String> = request.redirect.as_deref().and_then(crate::oidc::origin_of).into_iter().collect();
    allow_form_targets(&mut response, &origins);
    response
}
