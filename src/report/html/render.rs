//! The HTML of the report: one page, its style inline, its charts inline SVG, no script and nothing loaded from elsewhere.

use std::time::Duration;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::grade::Criterion;
use crate::grade::view::{BUCKETS, Ctx, Death, EventView, Mark, RunView, SessionView};
use crate::runner::ScenarioReport;

/// The page's style.
const CSS: &str = include_str!("report.css");
/// Width of the session labels, then of the plot, in SVG units.
const LABEL: f64 = 200.0;
const PLOT: f64 = 760.0;
/// Height of one session's row.
const ROW: f64 = 16.0;

/// One scenario and what the report shows of it.
pub struct Section<'a> {
    /// The runner's report of it.
    pub report: &'a ScenarioReport,
    /// The session velocity limit, per second, if the rule is on.
    pub rate_limit: Option<f64>,
}

/// The whole page.
pub fn page(title: &str, sections: &[Section<'_>]) -> String {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, CSS))
            body {
                h1 { (title) }
                nav { @for s in sections { a.(outcome_class(s.report)) href={ "#" (s.report.scenario) } { (s.report.scenario) } " " } }
                @for s in sections { (section(s)) }
            }
        }
    };
    markup.into_string()
}

/// A page's head: its title and its whole style, and no icon to fetch,
/// so the page asks nothing of the network.
pub(crate) fn head(title: &str, css: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            link rel="icon" href="data:,";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            style { (PreEscaped(css)) }
        }
    }
}

/// The timeline and deaths of a live target, for the dashboard.
pub(crate) fn live(view: &RunView) -> String {
    sessions(view).into_string()
}

/// The sessions' timeline, what was left out, and how each died.
fn sessions(view: &RunView) -> Markup {
    html! {
        (legend())
        (timeline(view))
        @if view.omitted > 0 {
            p.note { (view.omitted) " more sessions are not drawn: the dead ones come first, then the busiest." }
        }
        @if view.unreadable > 0 {
            p.note { (view.unreadable) " trace lines could not be read." }
        }
        (deaths(&view.sessions))
    }
}

fn outcome_class(r: &ScenarioReport) -> &'static str {
    match r.outcome {
        crate::grade::Outcome::Pass => "pass",
        crate::grade::Outcome::Fail => "fail",
        crate::grade::Outcome::Inconclusive => "inconclusive",
    }
}

fn section(s: &Section<'_>) -> Markup {
    let r = s.report;
    html! {
        section.scenario id=(r.scenario) {
            h2 { (r.scenario) " " span.outcome.(outcome_class(r)) { (r.outcome.word()) } }
            p.description { (r.description) }
            (card(&r.criteria))
            h3 id={ (r.scenario) "-sessions" } { "Sessions" }
            (sessions(&r.view))
            (missing(r))
            (rates(&r.view.sessions, s.rate_limit))
            (events(&r.view.events))
        }
    }
}

fn card(criteria: &[Criterion]) -> Markup {
    html! {
        table.card {
            thead { tr { th { "criterion" } th { "value" } th { "threshold" } th { "" } } }
            tbody {
                @for c in criteria {
                    tr.(if c.passed { "pass" } else { "fail" }) {
                        td { (c.name) } td { (c.value) } td { (c.threshold) }
                        td.verdict { (if c.passed { "PASS" } else { "FAIL" }) }
                    }
                    @if !c.details.is_empty() {
                        tr.details { td colspan="4" { ul { @for d in &c.details { li { (d) } } } } }
                    }
                }
            }
        }
    }
}

fn legend() -> Markup {
    let marks = [Mark::Allowed, Mark::Refused, Mark::InFlight, Mark::Zombie];
    html! {
        p.legend {
            @for m in marks { span.key.(m.name()) { } (m.name()) " " }
            span.key.birth { } "born " span.key.death { } "died " span.key.event { } "pool or timeline event"
        }
    }
}

/// The x of a moment on the plot.
fn x_of(at: Duration, span: Duration) -> f64 {
    LABEL + at.as_secs_f64() / span.as_secs_f64().max(0.001) * PLOT
}

fn timeline(v: &RunView) -> Markup {
    let height = ROW * (v.sessions.len() as f64 + 2.0);
    let width = LABEL + PLOT + 10.0;
    let step = PLOT / BUCKETS as f64;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            text.axis x=(LABEL) y=(height - 4.0) { "0 s" }
            text.axis x=(LABEL + PLOT) y=(height - 4.0) text-anchor="end" { (secs(v.span)) }
            @for e in &v.events {
                line.(e.kind) x1=(px(x_of(e.at, v.span))) x2=(px(x_of(e.at, v.span))) y1="0" y2=(px(height - ROW)) {
                    title { (secs(e.at)) ": " (e.text) }
                }
            }
            @for (row, s) in v.sessions.iter().enumerate() {
                @let y = ROW * row as f64;
                g.session data-session=(s.id) {
                    text.label x="2" y=(px(y + ROW - 4.0)) { (label(s)) }
                    @for b in &s.marks {
                        rect.mark.(b.mark.name()) x=(px(LABEL + b.index as f64 * step)) y=(px(y + 3.0)) width=(px(step.max(2.0))) height=(px(ROW - 6.0)) {
                            title { (b.requests) " request(s), worst: " (b.mark.name()) @if let Some(r) = b.reason { " (" (r) ")" } }
                        }
                    }
                    @if let Some(b) = s.born {
                        circle.birth cx=(px(x_of(b, v.span))) cy=(px(y + ROW / 2.0)) r="3" { title { "born at " (secs(b)) (birth_text(s)) } }
                    }
                    @if let Some(d) = &s.death {
                        path.death d=(cross(x_of(d.at, v.span), y + ROW / 2.0)) { title { (d.verdict) " at " (secs(d.at)) } }
                    }
                }
            }
        }
    }
}

/// An × of half-size 4 at (x, y), as an SVG path.
fn cross(x: f64, y: f64) -> String {
    let (l, r, t, b) = (px(x - 4.0), px(x + 4.0), px(y - 4.0), px(y + 4.0));
    format!("M{l} {t}L{r} {b}M{l} {b}L{r} {t}")
}

/// The birth context, for the birth's tooltip: address, network, JA4, UA.
fn birth_text(s: &SessionView) -> String {
    let fields = s.birth.iter().flat_map(|c| c.fields.iter());
    let said: Vec<String> = fields
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    if said.is_empty() {
        String::new()
    } else {
        format!(": {}", said.join(", "))
    }
}

/// A coordinate, to a tenth: enough for a screen, and short.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn label(s: &SessionView) -> String {
    let id = s.id.to_string();
    format!("{} {}", &id[..8.min(id.len())], s.account)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn deaths(sessions: &[SessionView]) -> Markup {
    let dead: Vec<(&SessionView, &Death)> = sessions
        .iter()
        .filter_map(|s| s.death.as_ref().map(|d| (s, d)))
        .collect();
    html! {
        @if !dead.is_empty() {
            h3 { "How sessions died: birth context beside the context that killed it" }
            @for (s, d) in dead {
                details.death open[s.zombies > 0 || dead_by_drift(d)] {
                    summary { (label(s)) ": " strong.reason { (d.verdict) } " at " (secs(d.at)) @if s.zombies > 0 { " — " span.zombie-count { (s.zombies) " zombie request(s)" } } }
                    (diff(s.birth.as_ref(), d.context.as_ref()))
                }
            }
        }
    }
}

/// Whether a verdict names a drift: those deaths are open at first.
fn dead_by_drift(d: &Death) -> bool {
    d.verdict.contains("DRIFT") || d.verdict.contains("TRAVEL")
}

fn diff(birth: Option<&Ctx>, death: Option<&Ctx>) -> Markup {
    let empty = Ctx::default();
    let (b, d) = (birth.unwrap_or(&empty), death.unwrap_or(&empty));
    html! {
        table.diff {
            thead { tr { th { "" } th { "at birth" } th { "when it died" } } }
            tbody {
                @for (name, value) in &b.fields {
                    @let changed = death.is_some() && b.differs(d, name);
                    @let now = d.get(name).unwrap_or("");
                    @if !(value.is_empty() && now.is_empty()) {
                        tr.changed[changed] { th { (name) } td.changed[changed] { (value) } td.changed[changed] { (now) } }
                    }
                }
            }
        }
    }
}

fn missing(r: &ScenarioReport) -> Markup {
    let m = &r.metrics.missing;
    html! {
        h3 { "Missing records, by cause" }
        table.missing {
            tr { th { "records never served" } td { (m.never_served) } }
            tr { th { "served but not written correctly" } td { (m.served_not_written) } }
            @for (why, n) in &m.requests_refused { tr { th { "requests refused: " (why) } td { (n) } } }
            @for (why, n) in &m.logins_refused { tr { th { "logins refused: " (why) } td { (n) } } }
        }
    }
}

fn rates(sessions: &[SessionView], limit: Option<f64>) -> Markup {
    let top = sessions
        .iter()
        .map(|s| s.peak_rate as f64)
        .fold(limit.unwrap_or(1.0), f64::max)
        .max(1.0);
    let bar = ROW;
    let height = bar * sessions.len() as f64 + 20.0;
    html! {
        h3 { "Peak request rate per session" @if let Some(l) = limit { " (the session limit is " (format!("{l:.1}")) "/s)" } }
        svg.rates xmlns="http://www.w3.org/2000/svg" width=(LABEL + PLOT) height=(height) {
            @for (i, s) in sessions.iter().enumerate() {
                @let w = s.peak_rate as f64 / top * PLOT;
                @let y = bar * i as f64;
                text.label x="2" y=(px(y + bar - 4.0)) { (label(s)) }
                rect.rate.over[limit.is_some_and(|l| s.peak_rate as f64 > l)] x=(LABEL) y=(px(y + 2.0)) width=(px(w.max(1.0))) height=(px(bar - 4.0)) {
                    title { (label(s)) ": " (s.peak_rate) " requests in its busiest second" }
                }
                text.axis x=(px(LABEL + w.max(1.0) + 4.0)) y=(px(y + bar - 4.0)) { (s.peak_rate) "/s" }
            }
            @if let Some(l) = limit {
                line.limit x1=(px(LABEL + l / top * PLOT)) x2=(px(LABEL + l / top * PLOT)) y1="0" y2=(height - 20.0) { title { "limit " (l) "/s" } }
            }
        }
    }
}

fn events(events: &[EventView]) -> Markup {
    html! {
        @if !events.is_empty() {
            h3 { "Pool moves and timeline actions" }
            ol.events { @for e in events { li.(e.kind) { (secs(e.at)) ": " (e.text) } } }
        }
    }
}
