//! `idm user ...`: staff accounts at the command line, as the system
//! (no signed-in actor), through the same services as the API.

use std::io::{IsTerminal, Read};

use clap::Subcommand;

use crate::app::AppState;
use crate::domain::{Role, Username};
use crate::error::Error;
use crate::service::Context;
use crate::service::listing::{MAX_PER_PAGE, Paging, UserListQuery};
use crate::service::users::{NewUser, UserChanges};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a staff account; prompts twice for the password on a terminal.
    Add {
        email: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List staff accounts.
    List,
    /// Delete a staff account.
    Delete { email: String },
    /// Grant or revoke admin rights.
    SetAdmin {
        email: String,
        #[arg(action = clap::ArgAction::Set, value_parser = clap::value_parser!(bool))]
        admin: bool,
    },
    /// Set a new password; ends the account's sessions and tokens.
    SetPassword {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Email the account a one-time link to choose a new password.
    SendReset { email: String },
    /// Create an account without a password and email it an invitation to
    /// choose one.
    Invite {
        email: String,
        /// admin, staff or monitor (reads, changes nothing).
        #[arg(long, default_value = "staff")]
        role: String,
    },
    /// Disable an account: it cannot sign in, its sessions and tokens end.
    Disable { email: String },
    /// Enable a disabled account again.
    Enable { email: String },
    /// Set the role: admin, staff or monitor.
    SetRole { email: String, role: String },
    /// Remove the account's second factor (it signs in with the password
    /// alone until it sets up a new one).
    ResetMfa { email: String },
}

pub(super) async fn user_command(state: &AppState, cmd: UserCommand) -> Result<(), Error> {
    let ctx = Context::system();
    let users = &state.services.users;
    match cmd {
        UserCommand::Add {
            email,
            admin,
            password_stdin,
        } => {
            let username = Username::parse(&email)?;
            let password = read_new_password(password_stdin)?;
            let user = users
                .create(
                    &ctx,
                    NewUser {
                        username: username.to_string(),
                        password,
                        admin,
                    },
                )
                .await?;
            println!(
                "created {} {}",
                if user.admin { "admin" } else { "user" },
                user.username
            );
        }
        UserCommand::List => {
            let mut offset = 0;
            loop {
                let query = UserListQuery {
                    search: None,
                    paging: Paging::new(offset, MAX_PER_PAGE),
                };
                let page = users.list(&ctx, query).await?;
                for u in &page.items {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.username,
                        u.role,
                        u.state,
                        u.last_login.map_or("never".to_owned(), |t| t.to_rfc3339())
                    );
                }
                offset += page.items.len() as u64;
                if page.items.is_empty() || offset >= page.total {
                    break;
                }
            }
        }
        UserCommand::Delete { email } => {
            users.delete(&ctx, &email).await?;
            println!("deleted {}", email.trim().to_lowercase());
        }
        UserCommand::SetAdmin { email, admin } => {
            let user = users
                .update(
                    &ctx,
                    &email,
                    UserChanges {
                        admin: Some(admin),
                        ..UserChanges::default()
                    },
                )
                .await?;
            println!(
                "{} is now {}",
                user.username,
                if user.admin { "an admin" } else { "staff" }
            );
        }
        UserCommand::SetPassword {
            email,
            password_stdin,
        } => {
            let password = read_new_password(password_stdin)?;
            let user = users
                .update(
                    &ctx,
                    &email,
                    UserChanges {
                        password: Some(password),
                        ..UserChanges::default()
                    },
                )
                .await?;
            println!(
                "password of {} changed; its sessions and tokens are revoked",
                user.username
            );
        }
        UserCommand::Invite { email, role } => {
            let role = Role::parse(&role)?;
            let user = state
                .services
                .accounts
                .create(&ctx, &email, None, role)
                .await?;
            println!(
                "invited {} as {}; the invitation email is on its way",
                user.username, user.role
            );
        }
        UserCommand::Disable { email } => {
            let user = users
                .update(
                    &ctx,
                    &email,
                    UserChanges {
                        disabled: Some(true),
                        ..UserChanges::default()
                    },
                )
                .await?;
            println!(
                "{} is disabled; its sessions and tokens are revoked",
                user.username
            );
        }
        UserCommand::Enable { email } => {
            let user = users
                .update(
                    &ctx,
                    &email,
                    UserChanges {
                        disabled: Some(false),
                        ..UserChanges::default()
                    },
                )
                .await?;
            println!("{} is {}", user.username, user.state);
        }
        UserCommand::SetRole { email, role } => {
            let role = Role::parse(&role)?;
            let user = users
                .update(
                    &ctx,
                    &email,
                    UserChanges {
                        role: Some(role),
                        ..UserChanges::default()
                    },
                )
                .await?;
            println!("{} is now {}", user.username, user.role);
        }
        UserCommand::ResetMfa { email } => {
            state
                .services
                .accounts
                .remove_second_factor(&ctx, &email, None)
                .await?;
            println!(
                "removed the second factor of {}",
                email.trim().to_lowercase()
            );
        }
        UserCommand::SendReset { email } => {
            state
                .services
                .recovery
                .send_reset_by_admin(&ctx, &email)
                .await?;
            println!(
                "sent a password reset link to {}",
                email.trim().to_lowercase()
            );
        }
    }
    Ok(())
}

/// The first line of standard input, or two matching prompts on a terminal.
fn read_new_password(from_stdin: bool) -> Result<String, Error> {
    if from_stdin {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).map_err(|e| {
            Error::BadRequest(format!("cannot read the password from standard input: {e}"))
        })?;
        let line = input.lines().next().unwrap_or("").to_owned();
        if line.is_empty() {
            return Err(Error::BadRequest("no password on standard input".into()));
        }
        return Ok(line);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::BadRequest(
            "standard input is not a terminal; pass --password-stdin to read the password from it"
                .into(),
        ));
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| Error::BadRequest(format!("cannot read the password: {e}")))?;
    let second = rpassword::prompt_password("Repeat password: ")
        .map_err(|e| Error::BadRequest(format!("cannot read the password: {e}")))?;
    if first != second {
        return Err(Error::BadRequest("the passwords do not match".into()));
    }
    Ok(first)
}
