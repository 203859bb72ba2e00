//! `/users`: user management for admins. Every action works as a plain
//! form post (redirect to the list with a flash message) and as an htmx
//! request (the `#users-panel` fragment is swapped in place).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{AccountState, Role};
use crate::error::Error;
use crate::service::listing::{Paging, UserListQuery};
use crate::service::users::{UserChanges, UserView};
use crate::store::Page;
use crate::web::error::WebError;
use crate::web::layout::{Field, Flash, Section, csrf_field, flash, form_problems, page};
use crate::web::messages::{FieldMessages, sentence};
use crate::web::session::{Admin, Visitor};
use crate::web::subjects::moment;

mod actions;
mod detail;

pub use actions::{confirm_delete, create, delete, send_reset, set_admin};
pub use detail::{act, show};

const PER_PAGE: u64 = 20;

/// The list as the admin sees it: search text and page (1-based). Actions
/// carry it along so the list looks the same afterwards.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListView {
    #[serde(default)]
    q: String,
    /// Text, not a number: form fields reach flattened structs as strings.
    #[serde(default)]
    page: String,
}

impl ListView {
    fn page(&self) -> u64 {
        self.page.trim().parse().unwrap_or(1).max(1)
    }

    fn url(&self, page: u64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.trim().is_empty() {
            pairs.push(("q", self.q.trim().to_owned()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        if pairs.is_empty() {
            "/users".to_owned()
        } else {
            format!(
                "/users?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }
    }

    fn hidden_fields(&self) -> Markup {
        html! {
            input type="hidden" name="q" value=(self.q);
            input type="hidden" name="page" value=(self.page());
        }
    }
}

/// What was typed into the create form, and what was wrong with it.
#[derive(Debug, Default)]
struct CreateForm {
    username: String,
    role: Option<Role>,
    errors: FieldMessages,
}

async fn load(
    state: &AppState,
    visitor: &Visitor,
    view: &ListView,
) -> Result<Page<UserView>, Error> {
    let query = UserListQuery {
        search: Some(view.q.clone()).filter(|q| !q.trim().is_empty()),
        paging: Paging::page(view.page(), PER_PAGE),
    };
    state.services.users.list(&visitor.ctx, query).await
}

fn when(t: Option<DateTime<Utc>>) -> Markup {
    html! {
        @if let Some(t) = t { (moment(t)) } @else { "never" }
    }
}

fn is_me(visitor: &Visitor, user: &UserView) -> bool {
    visitor
        .user()
        .is_some_and(|me| me.username.as_str() == user.username)
}

fn delete_url(user: &UserView, view: &ListView) -> String {
    let query = serde_urlencoded::to_string([
        ("username", user.username.as_str()),
        ("q", view.q.as_str()),
        ("page", &view.page().to_string()),
    ])
    .unwrap_or_default();
    format!("/users/delete?{query}")
}

pub(crate) fn role_badge(role: Role) -> Markup {
    html! {
        @match role {
            Role::Admin => span.badge { "Admin" },
            Role::Staff => span.badge.staff { "Staff" },
            Role::Monitor => span.badge.staff { "Monitor" },
        }
    }
}

pub(crate) fn state_badge(state: AccountState) -> Markup {
    html! {
        @match state {
            AccountState::Active => span.badge.staff { "Active" },
            AccountState::Invited => span.badge.staff { "Invited" },
            AccountState::Disabled => span.badge.danger { "Disabled" },
        }
    }
}

/// The page of one account.
pub(crate) fn user_url(username: &str) -> String {
    format!(
        "/users/{}",
        percent_encoding::utf8_percent_encode(username, percent_encoding::NON_ALPHANUMERIC)
    )
}

fn user_row(visitor: &Visitor, view: &ListView, user: &UserView) -> Markup {
    let me = is_me(visitor, user);
    html! {
        tr {
            td data-label="User" {
                a href=(user_url(&user.username)) { (user.username) }
                @if me { " " span.muted { "(you)" } }
            }
            td data-label="Role" {
                (role_badge(user.role))
                @if user.state != AccountState::Active { " " (state_badge(user.state)) }
                @if user.mfa { " " span.badge.staff title="Signs in with a second factor" { "2FA" } }
            }
            td data-label="Last sign-in" { (when(user.last_login)) }
            td.actions-cell {
                @if !me {
                    div.actions {
                        form.inline-form method="post" action="/users/admin"
                            hx-post="/users/admin" hx-target="#users-panel" hx-swap="outerHTML" {
                            (csrf_field(&visitor.csrf))
                            input type="hidden" name="username" value=(user.username);
                            input type="hidden" name="admin" value=(if user.admin { "false" } else { "true" });
                            (view.hidden_fields())
                            button.small.secondary type="submit"
                                aria-label=(format!("{} {}", if user.admin { "Remove admin from" } else { "Make admin:" }, user.username)) {
                                @if user.admin { "Remove admin" } @else { "Make admin" }
                            }
                        }
                        form.inline-form method="post" action="/users/reset"
                            hx-post="/users/reset" hx-target="#users-panel" hx-swap="outerHTML" {
                            (csrf_field(&visitor.csrf))
                            input type="hidden" name="username" value=(user.username);
                            (view.hidden_fields())
                            button.small.secondary type="submit"
                                aria-label=(format!("Send reset email to {}", user.username)) {
                                "Send reset email"
                            }
                        }
                        a.button.small.secondary href=(delete_url(user, view))
                            hx-get=(delete_url(user, view)) hx-target="closest tr" hx-swap="outerHTML"
                            aria-label=(format!("Delete {}", user.username)) { "Delete…" }
                    }
                }
            }
        }
    }
}

fn list_fragment(visitor: &Visitor, view: &ListView, users: &Page<UserView>) -> Markup {
    let page_no = view.page();
    let pages = users.total.div_ceil(PER_PAGE).max(1);
    html! {
        div #users-list {
            @if users.items.is_empty() {
                p.empty {
                    @if view.q.trim().is_empty() { "No users yet." } @else { "No user matches “" (view.q.trim()) "”." }
                }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Staff accounts" }
                        thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Last sign-in" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for user in &users.items { (user_row(visitor, view, user)) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                span.muted { (users.total) " user" @if users.total != 1 { "s" } " · page " (page_no) " of " (pages) }
                span.actions {
                    @if page_no > 1 {
                        a.button.small.secondary href=(view.url(page_no - 1)) hx-get=(view.url(page_no - 1))
                            hx-target="#users-list" hx-swap="outerHTML" hx-push-url="true" rel="prev" { "Previous" }
                    }
                    @if page_no < pages {
                        a.button.small.secondary href=(view.url(page_no + 1)) hx-get=(view.url(page_no + 1))
                            hx-target="#users-list" hx-swap="outerHTML" hx-push-url="true" rel="next" { "Next" }
                    }
                }
            }
        }
    }
}

fn create_form(visitor: &Visitor, view: &ListView, form: &CreateForm) -> Markup {
    html! {
        form #create-user method="post" action="/users"
            hx-post="/users" hx-target="#users-panel" hx-swap="outerHTML" novalidate {
            (csrf_field(&visitor.csrf))
            (view.hidden_fields())
            (form_problems(&form.errors.others(&["username", "password"])))
            div.form-row {
                (Field::new("username", "Email", "email")
                    .value(&form.username)
                    .error(form.errors.get("username"))
                    .render("new-user"))
                div.field.shrink {
                    label for="new-user-role" { "Role" }
                    select #new-user-role name="role" {
                        @for role in [Role::Staff, Role::Monitor, Role::Admin] {
                            option value=(role.as_str()) selected[form.role.unwrap_or(Role::Staff) == role] { (role.label()) }
                        }
                    }
                }
                (Field::new("password", "Initial password", "password")
                    .optional()
                    .autocomplete("new-password")
                    .error(form.errors.get("password"))
                    .hint("Leave empty to send an invitation: the person chooses their own password from the email.")
                    .render("new-user"))
            }
            button type="submit" { "Create user" }
        }
    }
}

fn panel(
    visitor: &Visitor,
    view: &ListView,
    users: &Page<UserView>,
    message: Option<&Flash>,
    form: &CreateForm,
) -> Markup {
    html! {
        div #users-panel {
            (flash(message))
            section.card aria-labelledby="create-heading" {
                h2 #create-heading { "Add a user" }
                (create_form(visitor, view, form))
            }
            section.card aria-labelledby="list-heading" {
                div.toolbar {
                    h2 #list-heading { "Users" }
                    form method="get" action="/users" role="search" {
                        label.visually-hidden for="user-search" { "Search users" }
                        input #user-search type="search" name="q" value=(view.q) placeholder="Search by email"
                            hx-get="/users" hx-trigger="input changed delay:300ms, search"
                            hx-target="#users-list" hx-swap="outerHTML" hx-push-url="true";
                        button.secondary type="submit" { "Search" }
                    }
                }
                (list_fragment(visitor, view, users))
            }
        }
    }
}

fn users_page(visitor: &Visitor, content: Markup) -> Markup {
    page(
        "Users",
        Some(&visitor.chrome(Section::Users)),
        false,
        html! {
            h1 { "User management" }
            (content)
        },
    )
}

/// The panel (htmx) or the whole page, with `status`.
async fn respond(
    state: &AppState,
    visitor: &Visitor,
    view: &ListView,
    status: StatusCode,
    message: Option<Flash>,
    form: &CreateForm,
) -> Result<Response, WebError> {
    let users = load(state, visitor, view)
        .await
        .map_err(|e| visitor.fail(e))?;
    let content = panel(visitor, view, &users, message.as_ref(), form);
    Ok(if visitor.htmx {
        (status, content).into_response()
    } else {
        (status, users_page(visitor, content)).into_response()
    })
}

/// After an action: htmx gets the panel with the outcome; a plain post
/// succeeds with a redirect (so reloading does not repeat it) and fails
/// with the page and its 4xx status.
async fn outcome(
    state: &AppState,
    visitor: &Visitor,
    view: &ListView,
    result: Result<String, Error>,
) -> Result<Response, WebError> {
    match result {
        Ok(done) if !visitor.htmx => {
            visitor.set_flash(Flash::ok(done)).await?;
            Ok(Redirect::to(&view.url(view.page())).into_response())
        }
        Ok(done) => {
            respond(
                state,
                visitor,
                view,
                StatusCode::OK,
                Some(Flash::ok(done)),
                &CreateForm::default(),
            )
            .await
        }
        Err(
            error @ (Error::BadRequest(_)
            | Error::Invalid(_)
            | Error::NotFound(_)
            | Error::Conflict(_)),
        ) => {
            respond(
                state,
                visitor,
                view,
                error.status(),
                Some(Flash::error(sentence(&error))),
                &CreateForm::default(),
            )
            .await
        }
        Err(other) => Err(visitor.fail(other)),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Query(view): Query<ListView>,
) -> Result<Response, WebError> {
    if visitor.htmx && visitor.htmx_target.as_deref() == Some("users-list") {
        let users = load(&state, &visitor, &view)
            .await
            .map_err(|e| visitor.fail(e))?;
        return Ok(list_fragment(&visitor, &view, &users).into_response());
    }
    let message = if visitor.htmx {
        None
    } else {
        visitor.take_flash().await?
    };
    respond(
        &state,
        &visitor,
        &view,
        StatusCode::OK,
        message,
        &CreateForm::default(),
    )
    .await
}
