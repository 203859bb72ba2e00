//! What admins do on the users page: create a user, grant or revoke admin
//! rights, send a reset email, delete (after a confirmation). Each answers
//! with the users panel (htmx) or a redirect back to the list.

// The page's rendering, list loading and answers are the parent's.
use super::*;

#[derive(Deserialize)]
pub struct CreateInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// `admin`, `staff` or `monitor`.
    #[serde(default)]
    role: Option<String>,
    /// The former "Administrator" checkbox: `true` is role admin.
    #[serde(default)]
    admin: Option<String>,
    #[serde(flatten)]
    view: ListView,
}

/// Creates an account: with a password an active one, without one (the
/// console's default) an invited one that gets its invitation email.
pub async fn create(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Form(input): Form<CreateInput>,
) -> Result<Response, WebError> {
    let role = match (input.role.as_deref(), input.admin.as_deref()) {
        (Some(role), _) => Role::parse(role),
        (None, Some("true")) => Ok(Role::Admin),
        (None, _) => Ok(Role::Staff),
    };
    let mut form = CreateForm {
        username: input.username.clone(),
        role: role.as_ref().ok().copied(),
        ..CreateForm::default()
    };
    let password = Some(input.password).filter(|p| !p.is_empty());
    let invited = password.is_none();
    let result = match role {
        Ok(role) => {
            state
                .services
                .accounts
                .create(&visitor.ctx, &input.username, password, role)
                .await
        }
        Err(error) => Err(error),
    };
    let status = match result {
        Ok(user) => {
            let role = match user.role {
                Role::Admin => "administrator",
                Role::Staff => "staff member",
                Role::Monitor => "monitor",
            };
            let done = if invited {
                format!(
                    "Invited {} as {role}. The invitation email is on its way.",
                    user.username
                )
            } else {
                format!("Created {} as {role}.", user.username)
            };
            return outcome(&state, &visitor, &input.view, Ok(done)).await;
        }
        // A taken address is about the email field too.
        Err(error @ (Error::Conflict(_) | Error::Invalid(_))) => {
            form.errors = FieldMessages::of_or_at(&error, "username");
            error.status()
        }
        Err(other) => return Err(visitor.fail(other)),
    };
    respond(&state, &visitor, &input.view, status, None, &form).await
}

#[derive(Deserialize)]
pub struct AdminInput {
    #[serde(default)]
    username: String,
    /// "true" to make an admin, anything else to remove the role.
    #[serde(default)]
    admin: String,
    #[serde(flatten)]
    view: ListView,
}

pub async fn set_admin(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Form(input): Form<AdminInput>,
) -> Result<Response, WebError> {
    let changes = UserChanges {
        admin: Some(input.admin == "true"),
        ..UserChanges::default()
    };
    let result = state
        .services
        .users
        .update(&visitor.ctx, &input.username, changes)
        .await
        .map(|user| {
            if user.admin {
                format!("{} is now an administrator.", user.username)
            } else {
                format!("{} is no longer an administrator.", user.username)
            }
        });
    outcome(&state, &visitor, &input.view, result).await
}

#[derive(Deserialize)]
pub struct ResetInput {
    #[serde(default)]
    username: String,
    #[serde(flatten)]
    view: ListView,
}

/// Emails the user a password-reset link (the recovery service's rules).
pub async fn send_reset(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Form(input): Form<ResetInput>,
) -> Result<Response, WebError> {
    let result = state
        .services
        .recovery
        .send_reset_by_admin(&visitor.ctx, &input.username)
        .await
        .map(|()| {
            format!(
                "A password reset link was sent to {}.",
                input.username.trim().to_lowercase()
            )
        });
    outcome(&state, &visitor, &input.view, result).await
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    username: String,
    #[serde(flatten)]
    view: ListView,
}

/// Asks before deleting: a row for htmx, a page otherwise. Changes nothing.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Query(input): Query<DeleteQuery>,
) -> Result<Response, WebError> {
    let user = state
        .services
        .users
        .get(&visitor.ctx, &input.username)
        .await
        .map_err(|e| visitor.fail(e))?;
    let view = &input.view;
    let form = html! {
        form.inline-form method="post" action="/users/delete"
            hx-post="/users/delete" hx-target="#users-panel" hx-swap="outerHTML" {
            (csrf_field(&visitor.csrf))
            input type="hidden" name="username" value=(user.username);
            (view.hidden_fields())
            button.danger.small type="submit" { "Delete user" }
        }
    };
    let question = html! {
        "Delete " strong { (user.username) } "? Their account and sign-in end at once; this cannot be undone."
    };
    if visitor.htmx {
        return Ok(html! {
            tr.confirm {
                td colspan="4" {
                    p role="alert" { (question) }
                    div.actions {
                        (form)
                        a.button.small.secondary href=(view.url(view.page())) hx-get=(view.url(view.page()))
                            hx-target="#users-panel" hx-swap="outerHTML" { "Cancel" }
                    }
                }
            }
        }
        .into_response());
    }
    Ok(users_page(
        &visitor,
        html! {
            div.card {
                p { (question) }
                div.actions {
                    (form)
                    a.button.small.secondary href=(view.url(view.page())) { "Cancel" }
                }
            }
        },
    )
    .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Form(input): Form<DeleteQuery>,
) -> Result<Response, WebError> {
    let result = state
        .services
        .users
        .delete(&visitor.ctx, &input.username)
        .await
        .map(|()| format!("Deleted {}.", input.username.trim().to_lowercase()));
    outcome(&state, &visitor, &input.view, result).await
}
