//! The bodies of the password reset mails, plain text and HTML. Each is
//! built in one pass: a value (a username, a link) goes in as it is and is
//! never read again, so text in it that looks like a placeholder stays
//! text; in the HTML part maud escapes it.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::service::mail::Bodies;

/// What every reset mail names.
pub(super) struct Recipient<'a> {
    pub service: &'a str,
    pub username: &'a str,
    /// The page that sends a new reset link.
    pub iforgot: &'a str,
}

/// The reset link the owner asked for on the iforgot page.
pub(super) fn reset(to: &Recipient, link: &str, expiry: &str) -> Bodies {
    let Recipient {
        service,
        username,
        iforgot,
    } = to;
    let text = format!(
        "Hello,\n\
         \n\
         We received a request to reset the password of your {service} account\n\
         {username}.\n\
         \n\
         To choose a new password, open this link within {expiry}:\n\
         \n\
         {link}\n\
         \n\
         The link works once. If you did not ask for it, ignore this message: your\n\
         password stays as it is. You can request a new link at any time:\n\
         {iforgot}\n\
         {SIGNATURE_SEPARATOR}\
         {service}\n"
    );
    let html = page(
        html! { "Reset your " (service) " password" },
        html! {
            p { "We received a request to reset the password of your " (service) " account "
                strong { (username) } "." }
            (open_link_within(link, expiry))
            p { "The link works once. If you did not ask for it, ignore this message: your \
                 password stays as it is. You can " a href=(iforgot) { "request a new link" }
                " at any time." }
        },
        service,
    );
    Bodies { text, html }
}

/// The reset link an administrator sent (API or users page).
pub(super) fn reset_by_admin(to: &Recipient, link: &str, expiry: &str) -> Bodies {
    let Recipient {
        service,
        username,
        iforgot,
    } = to;
    let text = format!(
        "Hello,\n\
         \n\
         An administrator of {service} has sent you a link to set a new password\n\
         for your account {username}.\n\
         \n\
         To choose a new password, open this link within {expiry}:\n\
         \n\
         {link}\n\
         \n\
         The link works once. Until you use it, your current password keeps\n\
         working. If you did not expect this message, ask your administrator (reply\n\
         to this message). When the link has expired, you can request a new one:\n\
         {iforgot}\n\
         {SIGNATURE_SEPARATOR}\
         {service}\n"
    );
    let html = page(
        html! { "Set a new password for your " (service) " account" },
        html! {
            p { "An administrator of " (service) " has sent you a link to set a new password \
                 for your account " strong { (username) } "." }
            (open_link_within(link, expiry))
            p { "The link works once. Until you use it, your current password keeps working. \
                 If you did not expect this message, ask your administrator (reply to this \
                 message). When the link has expired, you can "
                a href=(iforgot) { "request a new one" } "." }
        },
        service,
    );
    Bodies { text, html }
}

/// The notice after a password was changed through a reset link.
pub(super) fn password_changed(to: &Recipient) -> Bodies {
    let Recipient {
        service,
        username,
        iforgot,
    } = to;
    let text = format!(
        "Hello,\n\
         \n\
         The password of your {service} account {username} was just changed\n\
         through a reset link. All its sessions and access tokens have ended; sign\n\
         in again with the new password.\n\
         \n\
         If you did not do this, request a new reset link right away and tell your\n\
         administrator (reply to this message):\n\
         {iforgot}\n\
         {SIGNATURE_SEPARATOR}\
         {service}\n"
    );
    let html = page(
        html! { "Your " (service) " password was changed" },
        html! {
            p { "The password of your " (service) " account " strong { (username) }
                " was just changed through a reset link. All its sessions and access tokens \
                 have ended; sign in again with the new password." }
            p { "If you did not do this, " a href=(iforgot) { "request a new reset link" }
                " right away and tell your administrator (reply to this message)." }
        },
        service,
    );
    Bodies { text, html }
}

/// A blank line, then the line mail readers recognise as the start of a
/// signature (with its trailing space).
pub(crate) const SIGNATURE_SEPARATOR: &str = "\n-- \n";

fn open_link_within(link: &str, expiry: &str) -> Markup {
    html! {
        p { "To choose a new password, open this link within " (expiry) ":" }
        p { a href=(link) { (link) } }
    }
}

pub(crate) fn page(title: Markup, paragraphs: Markup, service: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body {
                p { "Hello," }
                (paragraphs)
                p { (PreEscaped("&mdash;")) br; (service) }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "http://idm.test/reset?k=00ff&x=1";

    fn all_bodies(to: &Recipient) -> [Bodies; 3] {
        [
            reset(to, LINK, "2 hours"),
            reset_by_admin(to, LINK, "2 hours"),
            password_changed(to),
        ]
    }

    /// The former templates filled `{{name}}` placeholders one value after
    /// the other, so a username containing `{{link}}` received the link.
    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_filled_in() {
        let to = Recipient {
            service: "C3-PRO IDM",
            username: "{{link}}@example.org",
            iforgot: "http://idm.test/iforgot?{{expiry}}",
        };
        for bodies in all_bodies(&to) {
            for body in [&bodies.text, &bodies.html] {
                assert!(body.contains("{{link}}@example.org"), "{body}");
                assert!(
                    body.contains("http://idm.test/iforgot?{{expiry}}"),
                    "{body}"
                );
                assert!(!body.contains("reset?k=00ff&x=1@example.org"), "{body}");
                assert!(!body.contains("reset?k=00ff&amp;x=1@example.org"), "{body}");
                assert!(!body.contains("iforgot?2 hours"), "{body}");
            }
        }
    }

    #[test]
    fn values_are_escaped_in_html_and_verbatim_in_text() {
        let to = Recipient {
            service: "C3-PRO IDM",
            username: "<b>o'neil</b>&co@example.org",
            iforgot: "http://idm.test/iforgot\"><script>",
        };
        for bodies in all_bodies(&to) {
            assert!(
                bodies
                    .html
                    .contains("<strong>&lt;b&gt;o'neil&lt;/b&gt;&amp;co@example.org</strong>"),
                "{}",
                bodies.html
            );
            assert!(
                bodies
                    .html
                    .contains(r#"href="http://idm.test/iforgot&quot;&gt;&lt;script&gt;""#),
                "{}",
                bodies.html
            );
            assert!(!bodies.html.contains("<script>"), "{}", bodies.html);
            assert!(bodies.text.contains(to.username), "{}", bodies.text);
            assert!(bodies.text.contains(to.iforgot), "{}", bodies.text);
        }
        let [reset, by_admin, _] = all_bodies(&to);
        for bodies in [reset, by_admin] {
            let escaped = "http://idm.test/reset?k=00ff&amp;x=1";
            assert!(
                bodies
                    .html
                    .contains(&format!(r#"<a href="{escaped}">{escaped}</a>"#)),
                "{}",
                bodies.html
            );
            assert!(
                bodies.text.contains(&format!("\n\n{LINK}\n\n")),
                "{}",
                bodies.text
            );
        }
    }

    /// Mail readers hide a signature after a line of exactly "-- ".
    #[test]
    fn the_text_ends_with_a_signature_the_mail_reader_recognises() {
        let to = Recipient {
            service: "C3-PRO IDM",
            username: "alice@example.org",
            iforgot: "http://idm.test/iforgot",
        };
        for bodies in all_bodies(&to) {
            assert!(
                bodies
                    .text
                    .ends_with("http://idm.test/iforgot\n\n-- \nC3-PRO IDM\n"),
                "{:?}",
                bodies.text
            );
        }
    }
}
