//! The page frame and form pieces every page shares.

use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};

use crate::service::CurrentUser;

/// htmx settings, read by htmx from a meta tag (no inline script):
/// no injected inline styles and no eval (the CSP forbids both), no history
/// snapshots in localStorage (pages hold personal data), full pages on
/// history restore, and 4xx/5xx answers are swapped like any other so forms
/// show their errors.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"historyCacheSize":0,"historyRestoreAsHxRequest":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;

/// What the frame around every page needs to know about the visitor.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user: Option<CurrentUser>,
    pub csrf: String,
    /// The navigation entry to mark as current.
    pub section: Section,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Users,
    Account,
    Other,
    Subjects,
}

/// A one-time message shown on the next page (after a redirect) or in the
/// swapped fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }
}

pub fn flash(message: Option<&Flash>) -> Markup {
    html! {
        @if let Some(m) = message {
            @if m.ok {
                div.flash.flash-ok role="status" tabindex="-1" { (m.text) }
            } @else {
                div.flash.flash-error role="alert" tabindex="-1" { (m.text) }
            }
        }
    }
}

/// Problems a form's service reported about fields the form does not
/// show (none, when each form shows the fields its service checks): shown
/// above the fields rather than lost.
pub fn form_problems(messages: &[&str]) -> Markup {
    html! {
        @if !messages.is_empty() {
            div.flash.flash-error role="alert" tabindex="-1" {
                @for message in messages { p { (message) } }
            }
        }
    }
}

/// The URL of a file in `static/` (`console.css`, `htmx/htmx.min.js`): a
/// content-hashed name that browsers keep for a year, since a changed file
/// gets a new name.
pub fn static_url(name: &str) -> String {
    crate::web::assets::url(name)
}

/// A complete HTML document. `narrow` is for the small single-form pages.
pub fn page(title: &str, chrome: Option<&Chrome>, narrow: bool, body: Markup) -> Markup {
    let csrf = chrome.map(|c| c.csrf.as_str()).unwrap_or("");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · C3-PRO IDM" }
                link rel="icon" href=(static_url("favicon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(static_url("console.css"));
                script src=(static_url("htmx/htmx.min.js")) defer {}
                script src=(static_url("app.js")) defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                (header(chrome))
                // Back/Forward: htmx fetches the page again (no snapshots,
                // see HTMX_CONFIG) and swaps in only its `main`.
                main #main .narrow[narrow] tabindex="-1" hx-history-elt {
                    (body)
                }
                footer.site-footer { "C3-PRO IDM" }
            }
        }
    }
}

fn header(chrome: Option<&Chrome>) -> Markup {
    let user = chrome.and_then(|c| c.user.as_ref());
    let current = |section: Section| chrome.filter(|c| c.section == section).map(|_| "page");
    html! {
        header.site-header {
            a.brand href=(if user.is_some() { "/home" } else { "/login" }) { "C3-PRO IDM" }
            nav.site-nav aria-label="Main" {
                @if let Some(user) = user {
                    a href="/home" aria-current=[current(Section::Home)] { "Home" }
                    a href="/subjects" aria-current=[current(Section::Subjects)] { "Subjects" }
                    @if user.admin {
                        a href="/users" aria-current=[current(Section::Users)] { "Users" }
                    }
                    a href="/account" aria-current=[current(Section::Account)] { "Account" }
                }
            }
            @if let (Some(user), Some(chrome)) = (user, chrome) {
                div.whoami {
                    span { "Signed in as " strong { (user.username.as_str()) } }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf_token" value=(chrome.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
            }
        }
    }
}

/// One labelled input with its error (if any) right below it, wired up with
/// `aria-invalid` and `aria-describedby` for screen readers.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    /// What the visitor typed; never set for passwords.
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub error: Option<&'a str>,
    pub hint: Option<&'a str>,
    pub autofocus: bool,
    pub required: bool,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str) -> Self {
        Self {
            name,
            label,
            kind,
            value: "",
            autocomplete: "off",
            error: None,
            hint: None,
            autofocus: false,
            required: true,
        }
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub fn autocomplete(mut self, autocomplete: &'a str) -> Self {
        self.autocomplete = autocomplete;
        self
    }

    pub fn error(mut self, error: Option<&'a str>) -> Self {
        self.error = error;
        self
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn autofocus(mut self, autofocus: bool) -> Self {
        self.autofocus = autofocus;
        self
    }

    pub fn render(&self, id_prefix: &str) -> Markup {
        let id = format!("{id_prefix}-{}", self.name);
        let error_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        let described_by = match (self.error.is_some(), self.hint.is_some()) {
            (true, true) => Some(format!("{error_id} {hint_id}")),
            (true, false) => Some(error_id.clone()),
            (false, true) => Some(hint_id.clone()),
            (false, false) => None,
        };
        html! {
            div.field {
                label for=(id) { (self.label) }
                input id=(id) name=(self.name) type=(self.kind) required[self.required]
                    autocomplete=(self.autocomplete)
                    value=[(!self.value.is_empty()).then_some(self.value)]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described_by]
                    autofocus[self.autofocus];
                @if let Some(error) = self.error {
                    p.error id=(error_id) { (error) }
                }
                @if let Some(hint) = self.hint {
                    p.hint id=(hint_id) { (hint) }
                }
            }
        }
    }
}

pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}
