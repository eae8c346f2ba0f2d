//! The dashboard's page: its layout in maud, its style and script embedded, nothing loaded from elsewhere.

use maud::{DOCTYPE, PreEscaped, html};

use crate::report::html::render;

/// The report's style, shared, and the dashboard's own.
const CSS: [&str; 2] = [
    include_str!("../../report/html/report.css"),
    include_str!("dashboard.css"),
];
/// The script that fills the page from the admin API and the event stream.
const SCRIPT: &str = include_str!("dashboard.js");

/// The page; the script fills it.
pub(crate) fn page() -> String {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (render::head("sessionrange dashboard", &CSS.concat()))
            body {
                header {
                    h1 { "sessionrange dashboard" }
                    span #status { "connecting…" }
                    button #reset type="button" title="Forget every session, account and refresh token" { "Reset" }
                }
                section {
                    h2 { "Sessions " span #total { } }
                    table #sessions {
                        thead { tr { th { "session" } th { "account" } th { "state" } th { "requests" } th { "age" } th { "born at" } th { "last seen at" } th { "JA4 and User-Agent" } } }
                        tbody { }
                    }
                    p.pager { button #prev type="button" { "newer" } " " span #pageinfo { } " " button #next type="button" { "older" } }
                }
                section {
                    h2 { "Accounts" }
                    table #accounts {
                        thead { tr { th { "account" } th { "invalidations" } th { "bans" } th { "" } } }
                        tbody { }
                    }
                }
                section {
                    h2 { "Timeline" }
                    div #timeline { }
                }
                section {
                    h2 { "Events, live" }
                    ol #log reversed { }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    markup.into_string()
}
