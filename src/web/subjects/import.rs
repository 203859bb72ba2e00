//! `/subjects/import`: subjects from a CSV file. The file is checked
//! first (a dry run): the page lists every row's problem and previews the
//! rows. Then the staff member either fixes the file and checks it again
//! until every row is valid and imports it whole, or imports only the
//! valid rows. Plain multipart posts: the file input needs no JavaScript,
//! and the checked file travels back in the import form, so the server
//! keeps nothing between the two steps.

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use crate::app::AppState;
use crate::error::Error;
use crate::service::csv::{ImportCheck, ImportMode, SUBJECT_COLUMNS};
use crate::web::error::WebError;
use crate::web::layout::{Flash, Section, csrf_field, flash, page};
use crate::web::session::{Visitor, Writer};

/// Rows shown in the preview table; problems are all shown.
const PREVIEW_ROWS: usize = 20;

pub const IMPORT_PATH: &str = "/subjects/import";

/// The form that sends a file to be checked.
fn upload_form(visitor: &Visitor, heading: &str) -> Markup {
    html! {
        section.card aria-labelledby="upload-heading" {
            h2 #upload-heading { (heading) }
            form #import-upload method="post" action=(IMPORT_PATH) enctype="multipart/form-data" {
                (csrf_field(&visitor.csrf))
                input type="hidden" name="action" value="check";
                div.field {
                    label for="import-file" { "CSV file" }
                    input #import-file type="file" name="file" accept=".csv,text/csv" required
                        aria-describedby="import-file-hint";
                    p.hint #import-file-hint {
                        "UTF-8, with a header row naming the columns " code { "sssid" } ", " code { "name" } " and "
                        code { "bday" } " (YYYY-MM-DD); optional: "
                        @for (i, column) in SUBJECT_COLUMNS[3..].iter().enumerate() {
                            @if i > 0 { ", " }
                            code { (column) }
                        }
                        ". The subject list's CSV download has this shape. Nothing is written until you import."
                    }
                }
                div.actions { button type="submit" { "Check file" } }
            }
        }
    }
}

fn import_page(visitor: &Visitor, message: Option<&Flash>, body: Markup) -> Markup {
    page(
        "Import subjects",
        Some(&visitor.chrome(Section::Subjects)),
        false,
        html! {
            p.breadcrumb { a href="/subjects" { "Subjects" } " / Import" }
            h1 { "Import subjects" }
            (flash(message))
            (body)
        },
    )
}

pub async fn import_form(Writer(visitor): Writer) -> Result<Response, WebError> {
    let message = visitor.take_flash().await?;
    let body = html! {
        (upload_form(&visitor, "Choose a file"))
        @if message.is_some() { p { a href="/subjects?sort=created&dir=desc" { "See the newest subjects" } } }
    };
    Ok(import_page(&visitor, message.as_ref(), body).into_response())
}

/// What the two forms send.
#[derive(Default)]
struct Upload {
    /// `check` (a dry run) or `import`.
    action: String,
    mode: String,
    file_name: String,
    file: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, Error> {
    let mut upload = Upload::default();
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge("The file is too large (at most 32 MiB).".into())
        } else {
            Error::BadRequest(format!("The upload could not be read: {}", e.body_text()))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or("") {
            "action" => upload.action = field.text().await.map_err(unreadable)?,
            "mode" => upload.mode = field.text().await.map_err(unreadable)?,
            "file_name" => upload.file_name = field.text().await.map_err(unreadable)?,
            // The file as chosen, or as checked and sent back.
            "file" | "checked" => {
                if let Some(name) = field.file_name() {
                    upload.file_name = name.to_owned();
                }
                upload.file = field.bytes().await.map_err(unreadable)?.to_vec();
            }
            _ => {}
        }
    }
    Ok(upload)
}

pub async fn import_upload(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let upload = read_upload(multipart).await.map_err(|e| visitor.fail(e))?;
    let csv = &state.services.csv;
    let checked = match csv.check_subjects(&visitor.ctx, &upload.file).await {
        Ok(checked) => checked,
        // A file that cannot be read at all: say why, offer another try.
        Err(e @ Error::BadRequest(_)) => {
            let message = Flash::error(format!("{} could not be read: {e}", shown_name(&upload)));
            let body = upload_form(&visitor, "Choose a file");
            return Ok((e.status(), import_page(&visitor, Some(&message), body)).into_response());
        }
        Err(other) => return Err(visitor.fail(other)),
    };
    if upload.action != "import" {
        return Ok(check_page(&visitor, &upload, &checked).into_response());
    }
    let mode = ImportMode::parse(Some(&upload.mode)).map_err(|e| visitor.fail(e))?;
    let report = csv
        .import_checked(&visitor.ctx, checked.clone(), mode, false)
        .await
        .map_err(|e| visitor.fail(e))?;
    if report.imported == 0 && !report.errors.is_empty() {
        // Bad rows and all-or-nothing, or the valid rows were taken
        // meanwhile: show the rows again.
        return Ok(check_page(&visitor, &upload, &checked).into_response());
    }
    let skipped = report.rows - report.imported;
    let text = if skipped == 0 {
        format!(
            "Imported {} of {}.",
            plural(report.imported, "subject"),
            shown_name(&upload)
        )
    } else {
        format!(
            "Imported {} of {}; left out {} with problems.",
            plural(report.imported, "subject"),
            shown_name(&upload),
            plural(skipped, "row")
        )
    };
    visitor.set_flash(Flash::ok(text)).await?;
    Ok(Redirect::to(IMPORT_PATH).into_response())
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn shown_name(upload: &Upload) -> String {
    if upload.file_name.trim().is_empty() {
        "the file".to_owned()
    } else {
        format!("“{}”", upload.file_name)
    }
}

/// The dry run's result: the problems, a preview, and the ways on.
fn check_page(visitor: &Visitor, upload: &Upload, checked: &ImportCheck) -> Markup {
    let rows = checked.rows.len() as u64;
    let bad: Vec<_> = checked
        .rows
        .iter()
        .filter(|r| r.problem.is_some())
        .collect();
    let valid = rows - bad.len() as u64;
    let text = String::from_utf8_lossy(&upload.file);
    let body = html! {
        section.card #import-check aria-labelledby="check-heading" {
            h2 #check-heading { "Check of " (shown_name(upload)) }
            p #import-summary role="status" {
                (plural(rows, "row")) ": " (valid) " valid, " (bad.len()) " with problems. Nothing has been written yet."
            }
            @if !bad.is_empty() {
                h3 { "Rows with problems" }
                div.table-wrap {
                    table #import-problems {
                        thead { tr { th scope="col" { "Row" } th scope="col" { "SSSID" } th scope="col" { "Problem" } } }
                        tbody {
                            @for row in &bad {
                                tr {
                                    td data-label="Row" { (row.row) }
                                    td data-label="SSSID" { (row.fields.sssid.as_deref().unwrap_or("")) }
                                    td data-label="Problem" { (row.problem.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            @if rows > 0 {
                h3 { "Preview" @if rows as usize > PREVIEW_ROWS { " (first " (PREVIEW_ROWS) " rows)" } }
                div.table-wrap {
                    table #import-preview {
                        thead { tr {
                            th scope="col" { "Row" } th scope="col" { "SSSID" } th scope="col" { "Name" }
                            th scope="col" { "Birth date" } th scope="col" { "Email" } th scope="col" { "Check" }
                        } }
                        tbody {
                            @for row in checked.rows.iter().take(PREVIEW_ROWS) {
                                tr {
                                    td data-label="Row" { (row.row) }
                                    td data-label="SSSID" { (row.fields.sssid.as_deref().unwrap_or("")) }
                                    td data-label="Name" { (row.fields.name.as_deref().unwrap_or("")) }
                                    td data-label="Birth date" { (row.fields.bday.as_deref().unwrap_or("")) }
                                    td data-label="Email" { (row.fields.email.clone().flatten().unwrap_or_default()) }
                                    td data-label="Check" { @if row.problem.is_some() { "Problem" } @else { "OK" } }
                                }
                            }
                        }
                    }
                }
            }
            @if valid > 0 {
                form #import-confirm method="post" action=(IMPORT_PATH) enctype="multipart/form-data" {
                    (csrf_field(&visitor.csrf))
                    input type="hidden" name="action" value="import";
                    input type="hidden" name="file_name" value=(upload.file_name);
                    input type="hidden" name="checked" value=(text);
                    @if bad.is_empty() {
                        input type="hidden" name="mode" value="all";
                        div.actions { button type="submit" { "Import " (plural(valid, "subject")) } }
                    } @else {
                        input type="hidden" name="mode" value="valid";
                        p { "Fix the rows with problems in your file and check it again to import every row, or import only the valid ones now." }
                        div.actions { button.secondary type="submit" { "Import only the " (plural(valid, "valid row")) } }
                    }
                }
            }
        }
        (upload_form(visitor, if bad.is_empty() { "Check another file" } else { "Check the fixed file" }))
    };
    import_page(visitor, None, body)
}
